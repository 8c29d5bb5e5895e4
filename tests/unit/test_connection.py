"""connection.py: the settings read from the Opus connection (base URL, timeout, key), seen through OpusHook."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_opus.exceptions import OpusConnectionConfigError
from airflow_provider_opus.hooks.opus import OpusHook
from tests.unit.helpers import KEY

pytestmark = pytest.mark.usefixtures("opus_connection")


@pytest.mark.parametrize(
    ("conn", "expected_url"),
    [
        ({"conn_type": "opus", "password": KEY}, "https://operator.opus.com"),
        ({"conn_type": "opus", "host": "http://127.0.0.1:8765/", "password": KEY}, "http://127.0.0.1:8765"),
        ({"conn_type": "opus", "host": "opus.internal", "password": KEY}, "https://opus.internal"),
        (
            {"conn_type": "opus", "host": "opus.internal", "port": 8443, "password": KEY},
            "https://opus.internal:8443",
        ),
    ],
)
def test_base_url_from_connection(monkeypatch, conn, expected_url):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    settings = OpusHook().settings
    assert settings.base_url == expected_url
    assert settings.timeout == 30.0
    assert KEY not in repr(settings)


def test_timeout_from_connection_extra_and_override(monkeypatch):
    conn = {"conn_type": "opus", "password": KEY, "extra": {"timeout": 12}}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    assert OpusHook().settings.timeout == 12
    assert OpusHook(timeout=3).settings.timeout == 3


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        ({"conn_type": "opus"}, "has no service key: set its password"),
        ({"conn_type": "opus", "host": "ftp://x", "password": KEY}, r"is not an http\(s\) URL"),
        (
            {"conn_type": "opus", "password": KEY, "extra": {"timeout": "soon"}},
            "timeout must be a positive number",
        ),
        (
            {"conn_type": "opus", "password": KEY, "extra": {"timeout": 0}},
            "timeout must be a positive number",
        ),
    ],
)
def test_bad_connection_fails_without_retries(monkeypatch, requests_mock, conn, message):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    with pytest.raises(OpusConnectionConfigError, match=message) as info:
        OpusHook().get_job_status("j1")
    assert isinstance(info.value, AirflowFailException)
    assert "opus_default" in str(info.value)
    assert requests_mock.call_count == 0
