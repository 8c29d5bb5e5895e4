"""retry.py: what is retried, how often and how long, for idempotent and billed calls (through OpusHook)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from airflow_provider_opus.api import STORAGE_PUT
from airflow_provider_opus.exceptions import (
    OpusRateLimitError,
    OpusRequestError,
    OpusServerError,
    OpusStorageError,
)
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.retry import is_retryable
from tests.unit.helpers import BASE, KEY, connect_timeout, hook, needs_connect_timeout_class

pytestmark = pytest.mark.usefixtures("opus_connection")


def test_get_retries_5xx_then_succeeds(opus_http, sleeps):
    opus_http.get(
        f"{BASE}/job/j1/status",
        [{"status_code": 502}, {"status_code": 500}, {"json": {"status": "COMPLETED"}}],
    )
    assert hook().get_job_status("j1") == "COMPLETED"
    assert opus_http.call_count == 3
    assert sleeps.call_count == 2


def test_retry_limit_bounds_attempts(opus_http, sleeps):
    opus_http.get(f"{BASE}/job/j1/status", status_code=503, json={"message": "busy"})
    with pytest.raises(OpusServerError, match="HTTP 503: busy"):
        hook(retry_limit=2).get_job_status("j1")
    assert opus_http.call_count == 3


def test_backoff_grows_exponentially(opus_http, sleeps):
    opus_http.get(f"{BASE}/job/j1/status", status_code=500)
    with pytest.raises(OpusServerError):
        OpusHook(retry_limit=3, retry_delay=1.0).get_job_status("j1")
    waits = [call.args[0] for call in sleeps.call_args_list]
    assert [int(w) for w in waits] == [1, 2, 4]
    assert all(w < int(w) + 1 for w in waits)


def test_429_honours_retry_after_seconds(opus_http, sleeps):
    opus_http.get(
        f"{BASE}/job/j1/status",
        [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": {"status": "IN PROGRESS"}}],
    )
    assert hook().get_job_status("j1") == "IN PROGRESS"
    assert sleeps.call_args_list[0].args[0] == 7.0


def test_retry_after_beyond_the_cap_is_left_to_airflow(opus_http, sleeps):
    opus_http.get(f"{BASE}/job/j1/status", status_code=429, headers={"Retry-After": "3600"})
    with pytest.raises(OpusRateLimitError) as info:
        hook().get_job_status("j1")
    assert info.value.retry_after == 3600
    assert opus_http.call_count == 1


def _refused() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("opus.test", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


def _truncated() -> aiohttp.ClientPayloadError:
    return aiohttp.ClientPayloadError("Response payload is not completed")


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (connect_timeout(), True),
        (aiohttp.ServerTimeoutError("read"), True),
        (asyncio.TimeoutError(), True),
        (_truncated(), True),
        (aiohttp.ServerDisconnectedError(), True),
        (_refused(), True),
    ],
)
def test_get_retries_transport_errors(opus_http, sleeps, failure, retried):
    opus_http.get(f"{BASE}/job/j1/status", [{"exc": failure}, {"json": {"status": "COMPLETED"}}])
    assert hook().get_job_status("j1") == "COMPLETED"
    assert opus_http.call_count == 2


@pytest.mark.parametrize(
    ("response", "retried"),
    [
        pytest.param({"exc": connect_timeout()}, True, marks=needs_connect_timeout_class),
        ({"exc": _refused()}, True),
        ({"status_code": 429}, True),
        ({"exc": aiohttp.ServerTimeoutError("read")}, False),
        ({"exc": asyncio.TimeoutError()}, False),
        ({"exc": _truncated()}, False),
        ({"exc": aiohttp.ServerDisconnectedError()}, False),
        ({"status_code": 500}, False),
        ({"status_code": 502}, False),
        # A gateway's 503 after forwarding (Envoy: "upstream connect error or disconnect/reset before
        # headers"): Opus may have created the job, so not even a 503 is sent again (#20 item 4).
        ({"status_code": 503, "body": "upstream connect error or disconnect/reset before headers"}, False),
        ({"status_code": 503, "headers": {"Retry-After": "1"}}, False),
        ({"status_code": 504}, False),
        ({"status_code": 201, "body": "<html>gateway</html>"}, False),
    ],
)
@pytest.mark.parametrize("endpoint", ["initiate", "execute"])
def test_billed_calls_retry_only_when_the_server_did_not_act(opus_http, sleeps, response, retried, endpoint):
    ok = {"status_code": 201, "json": {"jobExecutionId": "j1", "success": True}}
    opus_http.post(f"{BASE}/job/{endpoint}", [response, ok])
    h = hook()
    call = (lambda: h.initiate_job("wf", "t", "d")) if endpoint == "initiate" else (lambda: h.execute_job("j1", {}))
    if retried:
        call()
        assert opus_http.call_count == 2
    else:
        with pytest.raises(OpusRequestError) as info:
            call()
        assert opus_http.call_count == 1
        assert KEY not in str(info.value)
        # The try fails saying what to look for in Opus: the title of the job that may exist, or the job.
        expected = "look for a job titled 't' in Opus" if endpoint == "initiate" else "may have started job j1"
        assert expected in str(info.value)


@pytest.mark.parametrize(("status", "retried"), [(403, True), (401, True), (404, False), (413, False)])
def test_upload_refused_by_storage_is_retried_with_a_fresh_url_only_for_401_and_403(
    opus_http, sleeps, tmp_path, status, retried
):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF")
    opus_http.post(
        f"{BASE}/job/file/upload",
        [{"json": {"presignedUrl": f"https://bucket.test/u{n}?sig=s", "fileUrl": f"f{n}"}} for n in (1, 2)],
    )
    opus_http.put("https://bucket.test/u1", status_code=status)
    opus_http.put("https://bucket.test/u2", status_code=200)
    if retried:
        assert hook().upload_file(path) == "f2"
    else:
        with pytest.raises(OpusStorageError, match=f"PUT /u1 returned HTTP {status}"):
            hook().upload_file(path)
    assert [r.url.path for r in opus_http.request_history if r.method == "PUT"] == (
        ["/u1", "/u2"] if retried else ["/u1"]
    )
    assert is_retryable(OpusStorageError("PUT", "/u", "r", status_code=status), STORAGE_PUT) is retried


def test_one_retry_budget_for_the_whole_upload(opus_http, sleeps, tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF")
    opus_http.post(f"{BASE}/job/file/upload", status_code=503)
    with pytest.raises(OpusServerError):
        hook(retry_limit=2).upload_file(path)
    # The URL request is retried within the upload's budget, not once more for each upload attempt.
    assert opus_http.call_count == 3
