"""
pytest fixtures for testing against the Opus emulator.

Enable them in a conftest.py with ``pytest_plugins = ["airflow_provider_opus.emulator.pytest_plugin"]``.
The emulator serves the current API generation unless a test asks for another, with the
``opus_emulator_api`` marker (``@pytest.mark.opus_emulator_api("legacy")``) or by overriding the
``opus_emulator_api`` fixture (in a conftest.py, for a whole directory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_opus.emulator.generations import DEFAULT_API
from airflow_provider_opus.emulator.server import OpusEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

MARKER = "opus_emulator_api"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker, so that ``--strict-markers`` takes it."""
    config.addinivalue_line(
        "markers", f'{MARKER}(api): the API generation the opus_emulator fixture serves, "current" or "legacy"'
    )


@pytest.fixture
def opus_emulator_api() -> str:
    """
    Name the API generation the ``opus_emulator`` fixture serves: ``"current"``; override it to change that.

    ::

        @pytest.fixture
        def opus_emulator_api() -> str:
            return "legacy"
    """
    return DEFAULT_API


@pytest.fixture
def opus_emulator(
    request: pytest.FixtureRequest, opus_emulator_api: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OpusEmulator]:
    """
    Run an emulator with the bundled workflows for one test, and stop it after.

    ``AIRFLOW_CONN_OPUS_DEFAULT`` points at it while the test runs (see ``OpusEmulator.connection_json``).
    It serves the generation of the test's ``opus_emulator_api`` marker, else of the ``opus_emulator_api``
    fixture. Jobs take 1 s by default; call ``opus_emulator.configure(job_duration=...)`` to change that.
    """
    marker = request.node.get_closest_marker(MARKER)
    api = marker.args[0] if marker is not None and marker.args else opus_emulator_api
    with OpusEmulator(api=api) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", emulator.connection_json())
        yield emulator
