"""pytest_plugin.py: the ``opus_emulator`` fixture a project's tests can use."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.integration
pytest_plugins = ["airflow_provider_opus.emulator.pytest_plugin"]


def test_pytest_plugin_fixture_points_the_airflow_connection_at_the_emulator(opus_emulator):
    assert opus_emulator.running
    connection = json.loads(os.environ["AIRFLOW_CONN_OPUS_DEFAULT"])
    assert connection == {"conn_type": "opus", "host": opus_emulator.url, "password": "emulator-service-key"}
    assert json.loads(opus_emulator.connection_json()) == connection
