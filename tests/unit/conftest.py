"""Fixtures of the unit tests that drive OpusHook against ``requests_mock``."""

from __future__ import annotations

import json

import pytest

from tests.support.settings_cache import fresh_connection_settings
from tests.unit.helpers import BASE, KEY

__all__ = ["fresh_connection_settings"]  # autouse: each test reads its own connection


@pytest.fixture
def opus_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """``opus_default`` pointing at the fake host; a module asks for it with ``pytestmark = usefixtures(...)``."""
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "host": BASE, "password": KEY}))


@pytest.fixture
def sleeps(mocker):
    """Record tenacity's waits instead of sleeping."""
    return mocker.patch("tenacity.nap.time.sleep")
