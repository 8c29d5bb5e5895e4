"""The reliability suite records each case it tries; `make reliability-report` writes docs/reliability.md from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.report import RESULTS_DIR, run_facts
from tests.support.settings_cache import fresh_connection_settings

__all__ = ["fresh_connection_settings"]  # autouse: each test reads its own connection

_records: dict[str, list[dict[str, Any]]] = {}


class CaseRecorder:
    """Collects one category's cases: what was tried, what was expected, what happened."""

    def __init__(self, category: str) -> None:
        self.category = category

    def record(self, **case: Any) -> None:
        _records.setdefault(self.category, []).append(case)


@pytest.fixture
def recorder(request: pytest.FixtureRequest) -> CaseRecorder:
    """A recorder for the category named by the test module's ``CATEGORY``."""
    return CaseRecorder(request.module.CATEGORY)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Only a passing run may speak for the provider in the docs. The records go to a git-ignored
    # folder: running the tests changes no tracked file (`make reliability-report` writes the page).
    if not _records or exitstatus != 0:
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    facts = run_facts()
    for category, cases in _records.items():
        record = {**facts, "cases": cases}
        Path(RESULTS_DIR / f"{category}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
