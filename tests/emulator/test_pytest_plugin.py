"""pytest_plugin.py: the ``opus_emulator`` fixture a project's tests can use, and how they choose its generation."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

pytestmark = pytest.mark.integration
pytest_plugins = ["airflow_provider_opus.emulator.pytest_plugin", "pytester"]


def test_pytest_plugin_fixture_points_the_airflow_connection_at_the_emulator(opus_emulator):
    assert opus_emulator.running and opus_emulator.api == "current"
    connection = json.loads(os.environ["AIRFLOW_CONN_OPUS_DEFAULT"])
    assert connection == {
        "conn_type": "opus",
        "host": opus_emulator.url,
        "password": "emulator-service-key",
        "extra": {"app_url": opus_emulator.url, "callback_url": opus_emulator.callback_url},
    }
    assert json.loads(opus_emulator.connection_json()) == connection


# The marker is tried in a project of its own: a test module's pytest_plugins comes too late for its marks.
def test_a_project_chooses_the_generation_with_the_marker_or_by_overriding_the_fixture(pytester: pytest.Pytester):
    pytester.makeconftest(
        textwrap.dedent(
            """
            import pytest

            pytest_plugins = ["airflow_provider_opus.emulator.pytest_plugin"]


            @pytest.fixture
            def opus_emulator_api():
                return "legacy"
            """
        )
    )
    pytester.makepyfile(
        textwrap.dedent(
            """
            import json
            import os

            import pytest


            def test_overridden(opus_emulator):
                assert opus_emulator.api == "legacy"
                assert json.loads(os.environ["AIRFLOW_CONN_OPUS_DEFAULT"])["extra"] == {"app_url": opus_emulator.url}


            @pytest.mark.opus_emulator_api("current")
            def test_marked(opus_emulator):
                assert opus_emulator.api == "current"
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", "-q")
    result.assert_outcomes(passed=2)
