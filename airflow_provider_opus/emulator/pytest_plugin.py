"""
pytest fixtures for testing against the Opus emulator.

Enable them in a conftest.py with ``pytest_plugins = ["airflow_provider_opus.emulator.pytest_plugin"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_opus.emulator.server import OpusEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def opus_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpusEmulator]:
    """
    Run an emulator with the bundled workflows for one test, and stop it after.

    ``AIRFLOW_CONN_OPUS_DEFAULT`` points at it while the test runs. Jobs take 1 s by default; call
    ``opus_emulator.configure(job_duration=...)`` to change that.
    """
    with OpusEmulator() as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", emulator.connection_json())
        yield emulator
