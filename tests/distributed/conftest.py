"""The distributed suite runs only when asked for (``-m distributed``, as ``make e2e-distributed`` does)."""

from __future__ import annotations

import pytest

from tests.reliability import conftest as reliability


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # It needs PostgreSQL, Redis and the `distributed` extra, and minutes: `make test` and a plain
    # `pytest` leave it out, whatever else their -m asks for.
    if "distributed" in (config.getoption("markexpr") or ""):
        return
    left_out = [item for item in items if item.get_closest_marker("distributed")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("distributed")]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Its figures go to docs/reliability.md (`make reliability-report`) through the reliability suite's
    # records. A run over tests/ loads that suite's conftest, which writes them; a run of this folder alone does not.
    plugins = session.config.pluginmanager.get_plugins()
    if reliability not in plugins:
        reliability.pytest_sessionfinish(session, exitstatus)
