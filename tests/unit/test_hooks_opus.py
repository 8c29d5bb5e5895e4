"""hooks/opus.py: OpusHook at the edges a real server does not easily produce (its endpoints, waiting, connection
test); its uploads are in test_hooks_transfers.py."""

from __future__ import annotations

import json

import pytest

from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusInvalidArgumentError,
    OpusJobTimeoutError,
    OpusNotFoundError,
    OpusResponseError,
)
from airflow_provider_opus.hooks.opus import OpusHook
from tests.unit.helpers import BASE, KEY, connect_timeout, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


# -- each endpoint -----------------------------------------------------------------------------


def test_every_endpoint_sends_key_and_returns_parsed_body(opus_http):
    opus_http.get(f"{BASE}/workflow/wf1", json={"workflowId": "wf1", "jobPayloadSchema": {"a": {"type": "str"}}})
    opus_http.post(f"{BASE}/job/initiate", status_code=201, json={"jobExecutionId": "j1"})
    opus_http.post(f"{BASE}/job/file/upload", json={"presignedUrl": "https://s3.test/u?sig=1", "fileUrl": "f"})
    opus_http.post(f"{BASE}/job/execute", status_code=201, json={"success": True, "jobExecutionId": "j1"})
    opus_http.get(f"{BASE}/job/j1/status", json={"status": "IN PROGRESS"})
    opus_http.get(f"{BASE}/job/j1/results", json={"jobExecutionId": "j1", "status": "COMPLETED", "results": {}})
    opus_http.get(f"{BASE}/job/j1/audit", json={"jobExecutionId": "j1", "auditTrail": [{"action": "x"}]})
    h = hook()
    assert h.get_workflow("wf1")["workflowId"] == "wf1"
    assert h.get_job_payload_schema("wf1") == {"a": {"type": "str"}}
    assert h.initiate_job("wf1", "t", "d") == "j1"
    assert h.get_upload_url(".PDF", "workspace", workspace_id="ws1") == {
        "presignedUrl": "https://s3.test/u?sig=1",
        "fileUrl": "f",
    }
    assert h.execute_job("j1", {"x": {"value": 1, "type": "float"}})["success"] is True
    assert h.get_job_status("j1") == "IN PROGRESS"
    assert h.get_job_results("j1")["status"] == "COMPLETED"
    assert h.get_job_audit_log("j1") == [{"action": "x"}]
    history = opus_http.request_history
    assert all(r.headers["x-service-key"] == KEY for r in history)
    assert history[2].json == {"workflowId": "wf1", "title": "t", "description": "d"}
    assert history[3].json == {"fileExtension": ".pdf", "accessScope": "workspace", "workspaceId": "ws1"}
    assert history[4].json == {
        "jobExecutionId": "j1",
        "jobPayloadSchemaInstance": {"x": {"value": 1, "type": "float"}},
    }


def test_todays_api_fields_are_sent_only_when_given(opus_http, monkeypatch):
    # What the newer reference takes, sent only when set: the older one gets the same bodies as before.
    version_id = "3f69dcbf-713a-493d-8d08-3fdb754825ab"
    opus_http.get(f"{BASE}/workflow/wf1", json={"workflowId": "wf1", "jobPayloadSchema": {}})
    opus_http.post(f"{BASE}/job/initiate", json={"jobExecutionId": "j1"})
    opus_http.post(f"{BASE}/job/file/upload", json={"presignedUrl": "https://s3.test/u", "fileUrl": "f"})
    opus_http.post(f"{BASE}/job/execute", json={"success": True})
    h = hook()
    h.get_workflow("wf1", 2)
    h.get_workflow("wf1", version_id)
    h.initiate_job("wf1", "t", "d", version="3", source="scheduled", ref_user_id="u1", workspaces=["a", "b"])
    h.initiate_job("wf1", "t", "d", version=version_id)
    h.get_upload_url("pdf", None, original_name="invoice.pdf")
    h.execute_job("j1", {}, callback_url="https://hooks.example.com/opus", workspaces="a")
    history = opus_http.request_history
    assert [r.url.query_string for r in history[:2]] == ["version=2", f"workflowVersionId={version_id}"]
    assert history[2].json == {
        "workflowId": "wf1",
        "title": "t",
        "description": "d",
        "workflowVersionNumber": 3,
        "source": "scheduled",
        "refUserId": "u1",
        "workspaces": "a,b",
    }
    assert history[3].json == {"workflowId": "wf1", "title": "t", "description": "d", "workflowVersionId": version_id}
    assert history[4].json == {"fileExtension": ".pdf", "originalName": "invoice.pdf"}
    assert history[5].json == {
        "jobExecutionId": "j1",
        "jobPayloadSchemaInstance": {},
        "callbackUrl": "https://hooks.example.com/opus",
        "workspaces": "a",
    }


def test_execute_sends_the_connections_callback_url(opus_http, monkeypatch):
    conn = {"conn_type": "opus", "host": BASE, "password": KEY, "extra": {"callback_url": "https://cb.example.com/x"}}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    opus_http.post(f"{BASE}/job/execute", json={"success": True})
    hook().execute_job("j1", {})
    hook().execute_job("j1", {}, callback_url="https://override.example.com/y")
    assert [r.json["callbackUrl"] for r in opus_http.request_history] == [
        "https://cb.example.com/x",
        "https://override.example.com/y",
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: h.get_workflow("wf1", 0), "version must be a version number"),
        (lambda h: h.get_workflow("wf1", "latest"), "version must be a version number"),
        (lambda h: h.initiate_job("wf1", "t", "d", version=True), "version must be a version number"),
        (lambda h: h.initiate_job("wf1", "t", "d", source="cron"), "source must be one of email-agent"),
        (lambda h: h.initiate_job("wf1", "t", "d", workspaces=[1]), "workspaces must be a list"),
        (lambda h: h.initiate_job("wf1", "t", "d", ref_user_id=""), "ref_user_id must be a non-empty string"),
        (lambda h: h.initiate_job("wf1", 42, "d"), "title must be a non-empty string, got int 42"),
        (lambda h: h.execute_job("j1", {}, callback_url="http://hooks.example.com/x"), "callback_url 'http://hooks"),
        (lambda h: h.execute_job("j1", {}, callback_url="/relative"), "callback_url '/relative'"),
        (lambda h: h.get_upload_url("pdf", "workspace"), "access_scope 'workspace' needs the workspace"),
    ],
)
def test_bad_arguments_of_todays_api_fail_before_any_request(opus_http, call, message):
    with pytest.raises(OpusInvalidArgumentError, match=message):
        call(hook())
    assert opus_http.call_count == 0


def test_a_short_workflow_id_that_opus_does_not_know_says_v2_ids_are_uuids(opus_http):
    opus_http.get(f"{BASE}/workflow/B9uGJfZ3CFwOdMKH", status_code=404, json={"message": "Not found"})
    opus_http.get(f"{BASE}/workflow/3f69dcbf-713a-493d-8d08-3fdb754825ab", status_code=404, json={})
    with pytest.raises(OpusNotFoundError, match="not a UUID, and v2 workflows use UUIDs: give the id from"):
        hook().get_workflow("B9uGJfZ3CFwOdMKH")
    with pytest.raises(OpusNotFoundError) as raised:
        hook().get_workflow("3f69dcbf-713a-493d-8d08-3fdb754825ab")
    assert "UUID" not in str(raised.value)


def test_one_session_is_reused(opus_http):
    opus_http.get(f"{BASE}/job/j1/status", json={"status": "IN PROGRESS"})
    h = hook()
    h.get_job_status("j1")
    h.get_job_status("j1")
    hook().get_job_status("j1")  # another hook of the same connection, in the same thread
    first, *others = (r.session for r in opus_http.request_history)
    assert not first.closed
    assert all(session is first for session in others)


@pytest.mark.parametrize("bad", ["", "  ", None])
def test_empty_ids_rejected_before_any_request(opus_http, bad):
    with pytest.raises(OpusInvalidArgumentError):
        hook().get_job_status(bad)
    with pytest.raises(OpusInvalidArgumentError):
        hook().get_workflow(bad)
    assert opus_http.call_count == 0


def test_redirect_is_not_followed(opus_http):
    opus_http.get(f"{BASE}/job/j1/status", status_code=302, headers={"Location": "https://evil.test/x"})
    opus_http.get("https://evil.test/x", json={"status": "COMPLETED"})
    with pytest.raises(OpusResponseError, match="HTTP 302"):
        hook().get_job_status("j1")
    assert [r.url.host for r in opus_http.request_history] == ["opus.test"]


# -- waiting and connection test -------------------------------------------------------------------


def test_wait_for_job_returns_final_status(opus_http, mocker):
    mocker.patch("airflow_provider_opus.hooks.opus.time.sleep")
    opus_http.get(
        f"{BASE}/job/j1/status",
        [
            {"json": {"status": "IN PROGRESS"}},
            {"json": {"status": "IN PROGRESS"}},
            {"json": {"status": "FAILED"}},
        ],
    )
    assert hook().wait_for_job("j1", poll_interval=0.01) == "FAILED"
    assert opus_http.call_count == 3


def test_wait_for_job_times_out_and_says_the_job_keeps_running(opus_http):
    opus_http.get(f"{BASE}/job/j1/status", json={"status": "IN PROGRESS"})
    with pytest.raises(OpusJobTimeoutError, match="Opus has no cancel call: job j1 keeps running"):
        hook().wait_for_job("j1", poll_interval=0.01, timeout=0.05)


NOT_FOUND = {"status_code": 404, "json": {"message": "no such job"}}


@pytest.mark.parametrize(
    ("responses", "ok", "message"),
    [
        ([NOT_FOUND, {"status_code": 401}], True, "the service key was accepted"),
        ([NOT_FOUND, {"status_code": 404}], False, "https://opus.test is not the Opus API"),
        ([NOT_FOUND, {"exc": connect_timeout()}], False, "Could not reach https://opus.test"),
        ([{"status_code": 401, "json": {"message": "bad key"}}], False, "refused the service key (HTTP 401)"),
        ([{"exc": connect_timeout()}], False, "Could not reach https://opus.test"),
        ([{"status_code": 500}], False, "the key is unproven"),
    ],
)
def test_test_connection_says_what_it_proved(opus_http, responses, ok, message):
    opus_http.get(f"{BASE}/job/airflow-connection-test/status", responses)
    result, text = OpusHook().test_connection()
    assert result is ok
    assert message in text
    assert KEY not in text
    history = opus_http.request_history
    assert len(history) == len(responses)
    # The second request, which proves the host checks the key, goes without it.
    assert [r.headers.get("x-service-key") for r in history] == [KEY, None][: len(responses)]


def test_test_connection_reports_a_bad_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus"}))
    ok, text = OpusHook().test_connection()
    assert not ok
    assert "has no service key" in text


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0, -1, "60"])
def test_wait_for_job_refuses_a_timeout_that_could_never_end_before_any_call(opus_http, timeout):
    with pytest.raises(OpusInvalidArgumentError, match="timeout must be"):
        hook().wait_for_job("j1", poll_interval=0.01, timeout=timeout)
    assert opus_http.call_count == 0


def test_a_key_rotated_while_the_hook_lives_is_read_again_after_a_401(opus_http, monkeypatch):
    # The hook read the connection once and failed with OpusAuthError for good after a rotation (#20 item 5).
    rotated = "unit-test-rotated-key-654321"

    def by_key(request):
        if request.headers.get("x-service-key") == rotated:
            return {"json": {"status": "IN PROGRESS"}}
        return {"status_code": 401, "json": {"message": "bad key"}}

    opus_http.get(f"{BASE}/job/j1/status", [by_key])
    h = hook()
    h.settings  # noqa: B018 - read before the rotation
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "host": BASE, "password": rotated})
    )
    assert h.get_job_status("j1") == "IN PROGRESS"
    assert [r.headers["x-service-key"] for r in opus_http.request_history] == [KEY, rotated]


def test_a_second_401_with_an_unchanged_key_fails_at_once(opus_http):
    opus_http.get(f"{BASE}/job/j1/status", status_code=401, json={"message": "bad key"})
    with pytest.raises(OpusAuthError):
        hook().get_job_status("j1")
    assert opus_http.call_count == 1
