"""Unit tests of OpusHook and OpusAsyncHook at the edges a real server does not easily produce."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_opus.api import JobStatus, parse_retry_after
from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusBadRequestError,
    OpusConnectionConfigError,
    OpusInvalidArgumentError,
    OpusJobTimeoutError,
    OpusNotFoundError,
    OpusRateLimitError,
    OpusResponseError,
    OpusServerError,
    OpusTransportError,
)
from airflow_provider_opus.hooks.opus import OpusHook

KEY = "unit-test-service-key-123456"
BASE = "https://opus.test"


@pytest.fixture(autouse=True)
def opus_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "host": BASE, "password": KEY}))


@pytest.fixture
def sleeps(mocker):
    """Record tenacity's waits instead of sleeping."""
    return mocker.patch("tenacity.nap.time.sleep")


def hook(**kwargs) -> OpusHook:
    return OpusHook(retry_delay=0.01, **kwargs)


# -- connection settings -----------------------------------------------------------------------


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


# -- each endpoint -----------------------------------------------------------------------------


def test_every_endpoint_sends_key_and_returns_parsed_body(requests_mock):
    requests_mock.get(f"{BASE}/workflow/wf1", json={"workflowId": "wf1", "jobPayloadSchema": {"a": {}}})
    requests_mock.post(f"{BASE}/job/initiate", status_code=201, json={"jobExecutionId": "j1"})
    requests_mock.post(f"{BASE}/job/file/upload", json={"presignedUrl": "https://s3.test/u?sig=1", "fileUrl": "f"})
    requests_mock.post(f"{BASE}/job/execute", status_code=201, json={"success": True, "jobExecutionId": "j1"})
    requests_mock.get(f"{BASE}/job/j1/status", json={"status": "IN PROGRESS"})
    requests_mock.get(f"{BASE}/job/j1/results", json={"jobExecutionId": "j1", "status": "COMPLETED", "results": {}})
    requests_mock.get(f"{BASE}/job/j1/audit", json={"jobExecutionId": "j1", "auditTrail": [{"action": "x"}]})
    h = hook()
    assert h.get_workflow("wf1")["workflowId"] == "wf1"
    assert h.get_job_payload_schema("wf1") == {"a": {}}
    assert h.initiate_job("wf1", "t", "d") == "j1"
    assert h.get_upload_url(".PDF", "workspace") == {
        "presignedUrl": "https://s3.test/u?sig=1",
        "fileUrl": "f",
    }
    assert h.execute_job("j1", {"x": {"value": 1, "type": "float"}})["success"] is True
    assert h.get_job_status("j1") == "IN PROGRESS"
    assert h.get_job_results("j1")["status"] == "COMPLETED"
    assert h.get_job_audit_log("j1") == [{"action": "x"}]
    history = requests_mock.request_history
    assert all(r.headers["x-service-key"] == KEY for r in history)
    assert history[2].json() == {"workflowId": "wf1", "title": "t", "description": "d"}
    assert history[3].json() == {"fileExtension": ".pdf", "accessScope": "workspace"}
    assert history[4].json() == {
        "jobExecutionId": "j1",
        "jobPayloadSchemaInstance": {"x": {"value": 1, "type": "float"}},
    }


def test_one_session_is_reused(requests_mock):
    requests_mock.get(f"{BASE}/job/j1/status", json={"status": "IN PROGRESS"})
    h = hook()
    h.get_job_status("j1")
    session = h.session
    h.get_job_status("j1")
    assert h.session is session


def test_job_id_is_quoted_into_the_path(requests_mock):
    requests_mock.get(f"{BASE}/job/a%2Fb%20c/status", json={"status": "COMPLETED"})
    assert hook().get_job_status("a/b c") == "COMPLETED"


@pytest.mark.parametrize("bad", ["", "  ", None])
def test_empty_ids_rejected_before_any_request(requests_mock, bad):
    with pytest.raises(OpusInvalidArgumentError):
        hook().get_job_status(bad)
    with pytest.raises(OpusInvalidArgumentError):
        hook().get_workflow(bad)
    assert requests_mock.call_count == 0


def test_bad_access_scope_rejected_before_any_request(requests_mock):
    with pytest.raises(OpusInvalidArgumentError, match="access_scope must be one of all, user, workspace"):
        hook().get_upload_url("pdf", "everyone")
    assert requests_mock.call_count == 0


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


def test_redirect_is_not_followed(requests_mock):
    requests_mock.get(f"{BASE}/job/j1/status", status_code=302, headers={"Location": "https://evil.test/x"})
    requests_mock.get("https://evil.test/x", json={"status": "COMPLETED"})
    with pytest.raises(OpusResponseError, match="HTTP 302"):
        hook().get_job_status("j1")
    assert [r.hostname for r in requests_mock.request_history] == ["opus.test"]


# -- retries ---------------------------------------------------------------------------------------


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


def test_429_honours_retry_after_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == 42.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


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
        ({"status_code": 503}, True),
        ({"exc": requests.exceptions.ReadTimeout}, False),
        ({"exc": requests.exceptions.ChunkedEncodingError}, False),
        ({"exc": requests.exceptions.ConnectionError("Connection aborted")}, False),
        ({"status_code": 500}, False),
        ({"status_code": 502}, False),
        ({"status_code": 504}, False),
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
        with pytest.raises((OpusTransportError, OpusServerError)) as info:
            call()
        assert requests_mock.call_count == 1
        assert KEY not in str(info.value)


def test_transport_error_says_whether_the_request_was_sent(requests_mock):
    requests_mock.post(f"{BASE}/job/initiate", exc=requests.exceptions.ReadTimeout)
    with pytest.raises(OpusTransportError) as info:
        hook().initiate_job("wf", "t", "d")
    assert info.value.request_sent is True
    assert "POST /job/initiate failed (read timeout)" in str(info.value)


# -- uploads ----------------------------------------------------------------------------------------


def test_upload_streams_through_a_bare_session(requests_mock, tmp_path):
    path = tmp_path / "invoice.PDF"
    path.write_bytes(b"%PDF-1.4 hello")
    requests_mock.post(
        f"{BASE}/job/file/upload",
        json={"presignedUrl": "https://bucket.test/up/1?X-Sig=abc", "fileUrl": "https://files/1.pdf"},
    )
    requests_mock.put("https://bucket.test/up/1", status_code=200)
    assert hook().upload_file(path) == "https://files/1.pdf"
    put = requests_mock.request_history[-1]
    assert put.method == "PUT"
    assert "x-service-key" not in {k.lower() for k in put.headers}
    assert put.headers["Content-Type"] == "application/pdf"
    assert hasattr(put.body, "read"), "the body must be a stream, not bytes read into memory"
    assert requests_mock.request_history[0].json()["fileExtension"] == ".pdf"


def test_upload_put_is_retried_from_the_start(requests_mock, tmp_path, sleeps):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n")
    requests_mock.post(f"{BASE}/job/file/upload", json={"presignedUrl": "https://bucket.test/u", "fileUrl": "f"})
    requests_mock.put("https://bucket.test/u", [{"status_code": 503}, {"status_code": 200}])
    assert hook().upload_file(str(path), content_type="text/x-custom") == "f"
    assert requests_mock.request_history[-1].headers["Content-Type"] == "text/x-custom"
    assert requests_mock.call_count == 3


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.pdf", None, "does not exist"),
        ("folder.pdf", "dir", "is a directory"),
        ("virus.exe", "file", "'.exe'"),
    ],
)
def test_upload_rejects_bad_files_before_any_request(requests_mock, tmp_path, name, make, message):
    path = tmp_path / name
    if make == "dir":
        path.mkdir()
    elif make == "file":
        path.write_bytes(b"MZ")
    with pytest.raises(OpusInvalidArgumentError, match=message):
        hook().upload_file(path)
    assert requests_mock.call_count == 0


# -- waiting and connection test -------------------------------------------------------------------


def test_wait_for_job_returns_final_status(requests_mock, mocker):
    mocker.patch("airflow_provider_opus.hooks.opus.time.sleep")
    requests_mock.get(
        f"{BASE}/job/j1/status",
        [
            {"json": {"status": "IN PROGRESS"}},
            {"json": {"status": "IN PROGRESS"}},
            {"json": {"status": "FAILED"}},
        ],
    )
    assert hook().wait_for_job("j1", poll_interval=0.01) == "FAILED"
    assert requests_mock.call_count == 3


def test_wait_for_job_times_out_and_says_the_job_keeps_running(requests_mock):
    requests_mock.get(f"{BASE}/job/j1/status", json={"status": "IN PROGRESS"})
    with pytest.raises(OpusJobTimeoutError, match="Opus has no cancel call: job j1 keeps running"):
        hook().wait_for_job("j1", poll_interval=0.01, timeout=0.05)


def test_status_enum():
    assert not JobStatus.is_terminal("IN PROGRESS")
    assert JobStatus.is_terminal("COMPLETED") and JobStatus.is_success("COMPLETED")
    assert JobStatus.is_terminal("FAILED") and not JobStatus.is_success("FAILED")
    assert JobStatus.is_terminal("CANCELLED") and not JobStatus.is_success("CANCELLED")
    assert not JobStatus.is_success("completed")


@pytest.mark.parametrize(
    ("response", "ok", "message"),
    [
        ({"status_code": 404, "json": {"message": "no such job"}}, True, "the service key was accepted"),
        ({"status_code": 401, "json": {"message": "bad key"}}, False, "refused the service key (HTTP 401)"),
        ({"exc": requests.exceptions.ConnectTimeout}, False, "Could not reach https://opus.test"),
        ({"status_code": 500}, False, "the key is unproven"),
    ],
)
def test_test_connection_says_what_it_proved(requests_mock, response, ok, message):
    requests_mock.get(f"{BASE}/job/airflow-connection-test/status", **response)
    result, text = OpusHook().test_connection()
    assert result is ok
    assert message in text
    assert KEY not in text
    assert requests_mock.call_count == 1


def test_test_connection_reports_a_bad_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus"}))
    ok, text = OpusHook().test_connection()
    assert not ok
    assert "has no service key" in text
