"""Test-wide setup: a private AIRFLOW_HOME, and the emulator fixtures."""

from __future__ import annotations

import os
import tempfile

# Before anything imports Airflow: never touch ~/airflow, never load Airflow's examples.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="opus-tests-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.pop("AIRFLOW_CONN_OPUS_DEFAULT", None)
# The emulator listens on loopback: a proxy of the machine's environment (the hooks follow
# HTTPS_PROXY and HTTP_PROXY) must not carry the tests' requests to it. The proxy tests set their own.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(
    filter(None, [os.environ.get("no_proxy", os.environ.get("NO_PROXY")), "127.0.0.1", "localhost", "::1"])
)

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_opus.emulator import OpusEmulator

#: A key long enough for Airflow's masker, distinctive enough to grep for in leak checks.
SERVICE_KEY = "opus-test-key-7f3c9a1e5b2d4680"


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[OpusEmulator]:
    from airflow_provider_opus.emulator import OpusEmulator

    with OpusEmulator(service_key=SERVICE_KEY, job_duration=0.3, api="legacy") as emulator:
        yield emulator


def _serving(server: OpusEmulator, api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpusEmulator]:
    server.reset()
    server.configure(job_duration=0.3, job_duration_jitter=0.0, api=api)
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", server.connection_json())
    yield server
    server.reset()


@pytest.fixture
def emulator(_emulator_server: OpusEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpusEmulator]:
    """The shared emulator in the older API generation, reset, with ``opus_default`` pointing at it."""
    yield from _serving(_emulator_server, "legacy", monkeypatch)


@pytest.fixture
def current_emulator(_emulator_server: OpusEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpusEmulator]:
    """
    The shared emulator in today's API generation (strict bodies, a required callbackUrl), reset.

    ``opus_default`` points at it with the emulator's own callback receiver as ``callback_url``.
    """
    yield from _serving(_emulator_server, "current", monkeypatch)


@pytest.fixture(params=["legacy", "current"])
def either_emulator(
    request: pytest.FixtureRequest, _emulator_server: OpusEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OpusEmulator]:
    """The shared emulator in each API generation in turn: a test using it runs once against each."""
    yield from _serving(_emulator_server, request.param, monkeypatch)
