"""hooks/opus.py: OpusHook at the edges a real server does not easily produce (its endpoints, waiting, connection
test); its uploads are in test_hooks_transfers.py."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_opus.exceptions import OpusInvalidArgumentError, OpusJobTimeoutError, OpusResponseError
from airflow_provider_opus.hooks.opus import OpusHook
from tests.unit.helpers import BASE, KEY, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


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


@pytest.mark.parametrize("bad", ["", "  ", None])
def test_empty_ids_rejected_before_any_request(requests_mock, bad):
    with pytest.raises(OpusInvalidArgumentError):
        hook().get_job_status(bad)
    with pytest.raises(OpusInvalidArgumentError):
        hook().get_workflow(bad)
    assert requests_mock.call_count == 0


def test_redirect_is_not_followed(requests_mock):
    requests_mock.get(f"{BASE}/job/j1/status", status_code=302, headers={"Location": "https://evil.test/x"})
    requests_mock.get("https://evil.test/x", json={"status": "COMPLETED"})
    with pytest.raises(OpusResponseError, match="HTTP 302"):
        hook().get_job_status("j1")
    assert [r.hostname for r in requests_mock.request_history] == ["opus.test"]


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


NOT_FOUND = {"status_code": 404, "json": {"message": "no such job"}}


@pytest.mark.parametrize(
    ("responses", "ok", "message"),
    [
        ([NOT_FOUND, {"status_code": 401}], True, "the service key was accepted"),
        ([NOT_FOUND, {"status_code": 404}], False, "https://opus.test is not the Opus API"),
        ([NOT_FOUND, {"exc": requests.exceptions.ConnectTimeout}], False, "Could not reach https://opus.test"),
        ([{"status_code": 401, "json": {"message": "bad key"}}], False, "refused the service key (HTTP 401)"),
        ([{"exc": requests.exceptions.ConnectTimeout}], False, "Could not reach https://opus.test"),
        ([{"status_code": 500}], False, "the key is unproven"),
    ],
)
def test_test_connection_says_what_it_proved(requests_mock, responses, ok, message):
    requests_mock.get(f"{BASE}/job/airflow-connection-test/status", responses)
    result, text = OpusHook().test_connection()
    assert result is ok
    assert message in text
    assert KEY not in text
    history = requests_mock.request_history
    assert len(history) == len(responses)
    # The second request, which proves the host checks the key, goes without it.
    assert [r.headers.get("x-service-key") for r in history] == [KEY, None][: len(responses)]


def test_test_connection_reports_a_bad_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus"}))
    ok, text = OpusHook().test_connection()
    assert not ok
    assert "has no service key" in text


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0, -1, "60"])
def test_wait_for_job_refuses_a_timeout_that_could_never_end_before_any_call(requests_mock, timeout):
    with pytest.raises(OpusInvalidArgumentError, match="timeout must be"):
        hook().wait_for_job("j1", poll_interval=0.01, timeout=timeout)
    assert requests_mock.call_count == 0
