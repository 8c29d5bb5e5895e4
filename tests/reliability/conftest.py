"""The reliability suite records each case it tries; docs/reliability.md is generated from those records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.report import RESULTS_DIR, write_report

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
    if not _records:
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for category, cases in _records.items():
        Path(RESULTS_DIR / f"{category}.json").write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")
    # Only a passing run may speak for the provider in the docs.
    if exitstatus == 0:
        write_report()
