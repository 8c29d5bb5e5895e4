"""api.py: endpoint paths, job statuses, and how a response is read (errors, malformed bodies, Retry-After)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_opus.api import parse_retry_after
from airflow_provider_opus.exceptions import OpusAuthError, OpusBadRequestError, OpusNotFoundError, OpusResponseError
from tests.unit.helpers import BASE, KEY, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


def test_job_id_is_quoted_into_the_path(requests_mock):
    requests_mock.get(f"{BASE}/job/a%2Fb%20c/status", json={"status": "COMPLETED"})
    assert hook().get_job_status("a/b c") == "COMPLETED"


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "fails_task"),
    [
        (401, OpusAuthError, True),
        (403, OpusAuthError, True),
        (404, OpusNotFoundError, True),
        (400, OpusBadRequestError, True),
        (409, OpusBadRequestError, True),
    ],
)
def test_http_errors_map_to_own_exceptions(requests_mock, status, error, fails_task):
    requests_mock.get(f"{BASE}/job/j1/results", status_code=status, json={"message": "server says no"})
    with pytest.raises(error) as info:
        hook().get_job_results("j1")
    text = str(info.value)
    assert f"GET /job/j1/results returned HTTP {status}: server says no" in text
    assert KEY not in text
    assert isinstance(info.value, AirflowFailException) is fails_task
    assert requests_mock.call_count == 1  # client errors are never retried


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>gateway</html>", "the response of get_job_status is not JSON"),
        (json.dumps(["IN PROGRESS"]), "is a JSON list, expected an object"),
        (json.dumps({"state": "IN PROGRESS"}), "lacks status"),
        (json.dumps({"status": 3}), "status is int, expected a string"),
    ],
)
def test_malformed_2xx_names_the_endpoint(requests_mock, body, message):
    requests_mock.get(f"{BASE}/job/j1/status", text=body)
    with pytest.raises(OpusResponseError, match=message):
        hook().get_job_status("j1")


def test_429_honours_retry_after_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == 42.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0
