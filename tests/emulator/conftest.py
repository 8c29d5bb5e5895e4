"""Fixtures of the emulator's tests: the legacy ``emulator`` fixture is in tests/conftest.py, the current one here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.emulator.helpers import Api, CurrentApi

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_opus.emulator import OpusEmulator


@pytest.fixture
def api(emulator: OpusEmulator) -> Iterator[Api]:
    client = Api(emulator)
    yield client
    client.session.close()


@pytest.fixture(scope="session")
def _current_server() -> Iterator[OpusEmulator]:
    from airflow_provider_opus.emulator import OpusEmulator

    with OpusEmulator(service_key="opus-current-test-key-2b9d41c7", job_duration=0.3, api="current") as server:
        yield server


@pytest.fixture
def current(_current_server: OpusEmulator) -> Iterator[OpusEmulator]:
    """An emulator of the current API generation, shared by the tests, reset before and after each."""
    _current_server.reset()
    _current_server.configure(job_duration=0.3, job_duration_jitter=0.0, api="current")
    yield _current_server
    _current_server.reset()


@pytest.fixture
def capi(current: OpusEmulator) -> Iterator[CurrentApi]:
    """A client of the current generation's emulator."""
    client = CurrentApi(current)
    yield client
    client.session.close()
