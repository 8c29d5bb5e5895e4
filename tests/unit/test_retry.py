"""retry.py: what is retried, how often and how long, for idempotent and billed calls (through OpusHook)."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opus.api import STORAGE_PUT
from airflow_provider_opus.exceptions import (
    OpusRateLimitError,
    OpusRequestError,
    OpusServerError,
    OpusStorageError,
)
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.retry import is_retryable
from tests.unit.helpers import BASE, KEY, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


def test_get_retries_5xx_then_succeeds(requests_mock, sleeps):
    requests_mock.get(
        f"{BASE}/job/j1/status",
        [{"status_code": 502}, {"status_code": 500}, {"json": {"status": "COMPLETED"}}],
    )
    assert hook().get_job_status("j1") == "COMPLETED"
    assert requests_mock.call_count == 3
    assert sleeps.call_count == 2


def test_retry_limit_bounds_attempts(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/job/j1/status", status_code=503, json={"message": "busy"})
    with pytest.raises(OpusServerError, match="HTTP 503: busy"):
        hook(retry_limit=2).get_job_status("j1")
    assert requests_mock.call_count == 3


def test_backoff_grows_exponentially(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/job/j1/status", status_code=500)
    with pytest.raises(OpusServerError):
        OpusHook(retry_limit=3, retry_delay=1.0).get_job_status("j1")
    waits = [call.args[0] for call in sleeps.call_args_list]
    assert [int(w) for w in waits] == [1, 2, 4]
    assert all(w < int(w) + 1 for w in waits)


def test_429_honours_retry_after_seconds(requests_mock, sleeps):
    requests_mock.get(
        f"{BASE}/job/j1/status",
        [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": {"status": "IN PROGRESS"}}],
    )
    assert hook().get_job_status("j1") == "IN PROGRESS"
    assert sleeps.call_args_list[0].args[0] == 7.0


def test_retry_after_beyond_the_cap_is_left_to_airflow(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/job/j1/status", status_code=429, headers={"Retry-After": "3600"})
    with pytest.raises(OpusRateLimitError) as info:
        hook().get_job_status("j1")
    assert info.value.retry_after == 3600
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (requests.exceptions.ConnectTimeout, True),
        (requests.exceptions.ReadTimeout, True),
        (requests.exceptions.ChunkedEncodingError, True),
        (requests.exceptions.ConnectionError, True),
    ],
)
def test_get_retries_transport_errors(requests_mock, sleeps, failure, retried):
    requests_mock.get(f"{BASE}/job/j1/status", [{"exc": failure}, {"json": {"status": "COMPLETED"}}])
    assert hook().get_job_status("j1") == "COMPLETED"
    assert requests_mock.call_count == 2


def _refused() -> requests.exceptions.ConnectionError:
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = NewConnectionError(None, "Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/job/initiate", reason))


@pytest.mark.parametrize(
    ("response", "retried"),
    [
        ({"exc": requests.exceptions.ConnectTimeout}, True),
        ({"exc": _refused()}, True),
        ({"status_code": 429}, True),
        ({"exc": requests.exceptions.ReadTimeout}, False),
        ({"exc": requests.exceptions.ChunkedEncodingError}, False),
        ({"exc": requests.exceptions.ConnectionError("Connection aborted")}, False),
        ({"status_code": 500}, False),
        ({"status_code": 502}, False),
        # A gateway's 503 after forwarding (Envoy: "upstream connect error or disconnect/reset before
        # headers"): Opus may have created the job, so not even a 503 is sent again (#20 item 4).
        ({"status_code": 503, "text": "upstream connect error or disconnect/reset before headers"}, False),
        ({"status_code": 503, "headers": {"Retry-After": "1"}}, False),
        ({"status_code": 504}, False),
        ({"status_code": 201, "text": "<html>gateway</html>"}, False),
    ],
)
@pytest.mark.parametrize("endpoint", ["initiate", "execute"])
def test_billed_calls_retry_only_when_the_server_did_not_act(requests_mock, sleeps, response, retried, endpoint):
    ok = {"status_code": 201, "json": {"jobExecutionId": "j1", "success": True}}
    requests_mock.post(f"{BASE}/job/{endpoint}", [response, ok])
    h = hook()
    call = (lambda: h.initiate_job("wf", "t", "d")) if endpoint == "initiate" else (lambda: h.execute_job("j1", {}))
    if retried:
        call()
        assert requests_mock.call_count == 2
    else:
        with pytest.raises(OpusRequestError) as info:
            call()
        assert requests_mock.call_count == 1
        assert KEY not in str(info.value)
        # The try fails saying what to look for in Opus: the title of the job that may exist, or the job.
        expected = "look for a job titled 't' in Opus" if endpoint == "initiate" else "may have started job j1"
        assert expected in str(info.value)


@pytest.mark.parametrize(("status", "retried"), [(403, True), (401, True), (404, False), (413, False)])
def test_upload_refused_by_storage_is_retried_with_a_fresh_url_only_for_401_and_403(
    requests_mock, sleeps, tmp_path, status, retried
):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF")
    requests_mock.post(
        f"{BASE}/job/file/upload",
        [{"json": {"presignedUrl": f"https://bucket.test/u{n}?sig=s", "fileUrl": f"f{n}"}} for n in (1, 2)],
    )
    requests_mock.put("https://bucket.test/u1", status_code=status)
    requests_mock.put("https://bucket.test/u2", status_code=200)
    if retried:
        assert hook().upload_file(path) == "f2"
    else:
        with pytest.raises(OpusStorageError, match=f"PUT /u1 returned HTTP {status}"):
            hook().upload_file(path)
    assert [r.path for r in requests_mock.request_history if r.method == "PUT"] == (
        ["/u1", "/u2"] if retried else ["/u1"]
    )
    assert is_retryable(OpusStorageError("PUT", "/u", "r", status_code=status), STORAGE_PUT) is retried


def test_one_retry_budget_for_the_whole_upload(requests_mock, sleeps, tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF")
    requests_mock.post(f"{BASE}/job/file/upload", status_code=503)
    with pytest.raises(OpusServerError):
        hook(retry_limit=2).upload_file(path)
    # The URL request is retried within the upload's budget, not once more for each upload attempt.
    assert requests_mock.call_count == 3
