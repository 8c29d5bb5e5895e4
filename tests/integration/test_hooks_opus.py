"""hooks/opus.py: OpusHook against the emulator over real loopback HTTP: full jobs, faults, waiting, and no leaks
(its uploads: test_hooks_transfers.py)."""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from types import SimpleNamespace

import pytest

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusBadRequestError,
    OpusError,
    OpusNotFoundError,
    OpusResponseError,
    OpusTransportError,
)
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.payload import build_job_payload
from airflow_provider_opus.transport import MAX_RESPONSE_BYTES
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import (
    DRIPPED_ANSWER,
    RawServer,
    RecordingServer,
    assert_grew_from_30_to_600,
    closed_port,
    fast_hook,
    http_response,
    running_job,
    start_job,
)
from tests.support.task_context import VALID_INPUTS

pytestmark = pytest.mark.integration


def test_full_job_with_two_uploaded_files(emulator, tmp_path, caplog):
    invoice, notes = tmp_path / "invoice.pdf", tmp_path / "notes.csv"
    invoice.write_bytes(b"%PDF-1.4\n" + b"x" * 100_000)
    notes.write_text("a,b\n1,2\n")
    hook = fast_hook()
    with caplog.at_level(logging.DEBUG):
        details = hook.get_workflow(DEFAULT_WORKFLOW_ID)
        assert details["workflowId"] == DEFAULT_WORKFLOW_ID
        assert len(details["jobPayloadSchema"]) == 8
        invoice_url = hook.upload_file(invoice)
        notes_url = hook.upload_file(notes, access_scope="workspace", workspace_id="ws-1")
        inputs = {**VALID_INPUTS, "Invoice": invoice_url, "Supporting Documents": [notes_url]}
        job_id = start_job(hook, inputs)
        assert hook.get_job_status(job_id) == "IN PROGRESS"
        assert hook.wait_for_job(job_id, poll_interval=0.05, timeout=10) == "COMPLETED"
        results = hook.get_job_results(job_id)
        audit = hook.get_job_audit_log(job_id)
    assert results["status"] == "COMPLETED"
    assert results["results"]["data"]["verdict"] == "PASS"
    assert audit[0]["action"] == "Job initiated"
    assert audit[-1]["action"] == "Job completed successfully"
    uploads = emulator.uploads()
    assert sorted(upload["size"] for upload in uploads) == sorted([invoice.stat().st_size, notes.stat().st_size])
    puts = emulator.requests("storage_put")
    assert len(puts) == 2 and all(put["had_service_key"] is False for put in puts)
    assert SERVICE_KEY not in caplog.text


def test_test_connection_against_a_real_server(emulator, monkeypatch):
    assert fast_hook().test_connection() == (True, f"Connected to {emulator.url}: the service key was accepted.")
    bad_key = {"conn_type": "opus", "host": emulator.url, "password": "wrong-key-123456"}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(bad_key))
    ok, message = fast_hook().test_connection()
    assert not ok and "refused the service key (HTTP 401)" in message
    unreachable = {"conn_type": "opus", "host": f"http://127.0.0.1:{closed_port()}", "password": SERVICE_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(unreachable))
    ok, message = fast_hook().test_connection()
    assert not ok and message.startswith("Could not reach http://127.0.0.1:")
    assert SERVICE_KEY not in message


def test_429_with_retry_after_then_success(emulator):
    job_id = start_job(fast_hook())
    emulator.inject("get_job_status", {"status": 429, "retry_after": "1"})
    started = time.monotonic()
    assert fast_hook().get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert time.monotonic() - started >= 0.9  # Retry-After was honoured, not the 0.01 s backoff
    assert [r["status"] for r in emulator.requests("get_job_status")] == [429, 200]


def test_503_on_a_get_is_retried(emulator):
    emulator.inject("get_workflow", {"status": 503}, {"status": 502})
    assert fast_hook().get_workflow(DEFAULT_WORKFLOW_ID)["workflowId"] == DEFAULT_WORKFLOW_ID
    assert [r["status"] for r in emulator.requests("get_workflow")] == [503, 502, 200]


def test_read_timeout_on_initiate_is_not_retried(emulator):
    emulator.inject("initiate_job", {"delay": 1.5})
    with pytest.raises(OpusTransportError) as info:
        fast_hook(timeout=0.5).initiate_job(DEFAULT_WORKFLOW_ID, "t", "d")
    assert info.value.request_sent is True
    assert "the response took longer than 0.5 s" in str(info.value)
    time.sleep(1.2)  # let the server finish the request the client gave up on
    assert len(emulator.requests("initiate_job")) == 1
    assert len(emulator.jobs()) == 1


def test_dropped_response_on_execute_is_not_retried(emulator):
    hook = fast_hook()
    schema = hook.get_job_payload_schema(DEFAULT_WORKFLOW_ID)
    job_id = hook.initiate_job(DEFAULT_WORKFLOW_ID, "t", "d")
    emulator.inject("execute_job", {"drop": "after"})
    with pytest.raises(OpusTransportError):
        hook.execute_job(job_id, build_job_payload(schema, VALID_INPUTS))
    assert len(emulator.requests("execute_job")) == 1
    assert hook.get_job_status(job_id) == "IN PROGRESS"  # the server did act


def test_refused_connection_on_initiate_is_retried(monkeypatch):
    conn = {"conn_type": "opus", "host": f"http://127.0.0.1:{closed_port()}", "password": SERVICE_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    with pytest.raises(OpusTransportError) as info:
        OpusHook(retry_limit=2, retry_delay=0.01).initiate_job("wf", "t", "d")
    assert info.value.request_sent is False
    assert SERVICE_KEY not in str(info.value)


def test_429_on_initiate_is_retried_and_bills_once(emulator):
    emulator.inject("initiate_job", {"status": 429}, {"status": 429})
    fast_hook().initiate_job(DEFAULT_WORKFLOW_ID, "t", "d")
    assert [r["status"] for r in emulator.requests("initiate_job")] == [429, 429, 201]
    assert len(emulator.jobs()) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_on_initiate_is_not_retried_and_names_the_title_to_look_for(emulator, status):
    # A gateway's 503 may come after it forwarded the call to Opus, which created the job (#20 item 4).
    emulator.inject("initiate_job", {"status": status})
    with pytest.raises(OpusError, match=f"HTTP {status}.*look for a job titled 'dag.task' in Opus"):
        fast_hook().initiate_job(DEFAULT_WORKFLOW_ID, "dag.task", "d")
    assert len(emulator.requests("initiate_job")) == 1


def test_non_json_and_wrong_shape_name_the_endpoint(emulator):
    emulator.inject("get_job_status", {"status": 200, "body": "<html>maintenance</html>"})
    with pytest.raises(OpusResponseError, match="get_job_status is not JSON"):
        fast_hook().get_job_status("x")
    emulator.inject("initiate_job", {"status": 201, "json": {"id": "1"}})
    with pytest.raises(OpusResponseError, match="initiate_job lacks jobExecutionId"):
        fast_hook().initiate_job(DEFAULT_WORKFLOW_ID, "t", "d")


def test_server_validation_errors_surface_the_server_message(emulator):
    with pytest.raises(OpusNotFoundError, match="GET /workflow/nope returned HTTP 404"):
        fast_hook().get_workflow("nope")
    job_id = start_job(fast_hook())
    with pytest.raises(OpusBadRequestError, match="HTTP 409"):
        fast_hook().execute_job(job_id, {})


def test_key_appears_in_no_log_and_no_exception(emulator, monkeypatch, caplog, capsys):
    texts = []
    with caplog.at_level(logging.DEBUG):
        emulator.inject("get_job_status", {"status": 503, "times": 10})
        with pytest.raises(OpusError) as info:
            fast_hook(retry_limit=2).get_job_status("x")
        texts.append(str(info.value))
        bad = {"conn_type": "opus", "host": emulator.url, "password": SERVICE_KEY + "-revoked"}
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(bad))
        with pytest.raises(OpusAuthError) as info:
            fast_hook().get_workflow(DEFAULT_WORKFLOW_ID)
        texts.append(str(info.value))
        texts.append(repr(info.value))
    out = capsys.readouterr()
    for text in [*texts, caplog.text, out.out, out.err]:
        assert SERVICE_KEY not in text
    assert "retry 1 of 2" in caplog.text + out.out + out.err


def test_blocking_wait_grows_its_interval_with_max_poll_interval(emulator, monkeypatch):
    import airflow_provider_opus.hooks.opus as hook_module

    job_id, clock = running_job(emulator)
    monkeypatch.setattr(hook_module, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    assert OpusHook().wait_for_job(job_id, poll_interval=30, max_poll_interval=600) == "COMPLETED"
    assert_grew_from_30_to_600(clock.waits)


# -- response shapes: each field the hook reads is checked ---------------------------------------------


@pytest.mark.parametrize(
    ("job_execution_id", "shown"), [(True, "bool True"), ("", "''"), (None, "null"), ({"id": 1}, "dict")]
)
def test_initiate_answer_with_a_bad_job_id_names_the_field(emulator, job_execution_id, shown):
    emulator.inject("initiate_job", {"status": 201, "json": {"jobExecutionId": job_execution_id}})
    with pytest.raises(OpusResponseError) as info:
        fast_hook().initiate_job(DEFAULT_WORKFLOW_ID, "t", "d")
    assert f"jobExecutionId is {shown}" in str(info.value)


def test_initiate_answer_with_a_numeric_job_id_is_a_string(emulator):
    emulator.inject("initiate_job", {"status": 201, "json": {"jobExecutionId": 2514}})
    assert fast_hook().initiate_job(DEFAULT_WORKFLOW_ID, "t", "d") == "2514"


@pytest.mark.parametrize(
    ("results", "field"),
    [
        (["a"], "results is list ['a'], expected an object"),
        ("done", "results is 'done', expected an object"),
        ({"outputFiles": "https://f/out.pdf"}, "results.outputFiles is 'https://f/out.pdf', expected a list"),
        ({"outputFiles": [1]}, "results.outputFiles is list [1], expected a list"),
    ],
)
def test_results_answer_of_the_wrong_shape_names_the_field(emulator, results, field):
    body = {"jobExecutionId": "j", "status": "COMPLETED", "results": results}
    emulator.inject("get_job_results", {"status": 200, "json": body})
    with pytest.raises(OpusResponseError, match="GET /job/j/results") as info:
        fast_hook().get_job_results("j")
    assert field in str(info.value)


# -- the connection: the key as pasted, the environment's credentials -------------------------------


@pytest.mark.parametrize("pasted", [SERVICE_KEY + "\n", f"  {SERVICE_KEY}\r\n", f"\t{SERVICE_KEY} "])
def test_key_with_surrounding_whitespace_is_trimmed(emulator, monkeypatch, pasted):
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "host": emulator.url, "password": pasted})
    )
    assert fast_hook().get_workflow(DEFAULT_WORKFLOW_ID)["workflowId"] == DEFAULT_WORKFLOW_ID
    assert fast_hook().test_connection()[0] is True


def test_netrc_credentials_go_to_no_host(emulator, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine 127.0.0.1 login alice password netrc-secret-1\ndefault login bob password netrc-secret-2\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))  # what ~/.netrc would be
    with RecordingServer() as api:
        conn = {"conn_type": "opus", "host": api.url, "password": SERVICE_KEY}
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
        assert fast_hook().get_job_status("j1") == "IN PROGRESS"
    (headers,) = api.headers
    assert headers.get("x-service-key") == SERVICE_KEY
    assert "authorization" not in {name.lower() for name in headers}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", emulator.connection_json())
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF")
    fast_hook().upload_file(path)
    (upload,) = emulator.uploads()
    assert upload["had_authorization"] is False and upload["had_service_key"] is False


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, "<html><body>Not Found</body></html>"),  # a plain web server
        (404, {"message": "Cannot GET /job/airflow-connection-test/status"}),  # a JSON 404 for every path
        (200, "<!DOCTYPE html><html>Opus app</html>"),  # a web app that answers every path
    ],
)
def test_test_connection_refuses_a_host_that_is_not_opus(monkeypatch, status, body):
    with RecordingServer(status, body) as web:
        conn = {"conn_type": "opus", "host": web.url, "password": "wrong-key-0123456789"}
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
        ok, message = fast_hook().test_connection()
    assert ok is False
    assert web.url in message
    assert "accepted" not in message


# -- the connection's timeout bounds a whole call; an answer is read up to a limit ----------------


def drip(method: str, path: str, send) -> None:
    send(DRIPPED_ANSWER, interval=0.5)


def test_a_dripping_server_cannot_stretch_a_call_past_the_timeout(monkeypatch):
    with RawServer(drip) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", server.connection_json(timeout=2))
        started = time.monotonic()
        with pytest.raises(OpusTransportError) as info:
            OpusHook(retry_limit=0).get_job_status("j1")
        elapsed = time.monotonic() - started
    assert str(info.value) == "Opus GET /job/j1/status failed (the response took longer than 2 s)"
    # The message proves the deadline fired; the bound only tells it from the whole drip (about 100 s),
    # far enough from both that a loaded machine cannot fail it.
    assert elapsed < 50


def test_a_deadline_passed_on_initiate_is_not_retried(monkeypatch):
    with RawServer(drip) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", server.connection_json(timeout=1))
        with pytest.raises(OpusTransportError) as info:
            OpusHook(retry_limit=3, retry_delay=0.01).initiate_job("wf", "t", "d")
    assert info.value.request_sent is True  # the server had the request: a second one could bill twice
    assert server.requests == [("POST", "/job/initiate")]


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "until-close"])
def test_an_answer_over_the_size_limit_is_refused_unread(monkeypatch, announced):
    sent = []

    def huge(method: str, path: str, send) -> None:
        # 4 times the limit, a MiB at a time, with or without saying its size up front.
        head = http_response(b"", content_length=False)
        if announced:
            head = head.replace(b"Connection:", f"Content-Length: {4 * MAX_RESPONSE_BYTES}\r\nConnection:".encode())
        send(head)
        sent.extend(True for _ in range(4 * MAX_RESPONSE_BYTES // 2**20) if send(b" " * 2**20))

    with RawServer(huge) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", server.connection_json())
        with pytest.raises(OpusResponseError) as info:
            OpusHook(retry_limit=0).get_job_status("j1")
    assert str(info.value) == (
        f"Opus GET /job/j1/status returned HTTP 200 (the response was larger than {MAX_RESPONSE_BYTES} bytes, "
        "more than any Opus answer)"
    )
    assert len(sent) < 4 * MAX_RESPONSE_BYTES // 2**20  # the hook stopped reading and hung up


def test_answers_read_in_chunks_keep_the_connection_alive(emulator):
    hook = fast_hook()
    for _ in range(5):
        hook.get_workflow(DEFAULT_WORKFLOW_ID)
    assert len({call["client_port"] for call in emulator.requests("get_workflow")}) == 1  # one kept-alive connection


def test_a_threads_event_loop_and_sessions_close_when_the_thread_ends(emulator):
    from airflow_provider_opus import transport
    from airflow_provider_opus.hooks import opus

    seen = []

    def in_thread() -> None:
        fast_hook().get_workflow(DEFAULT_WORKFLOW_ID)
        loop = opus._thread_loops.current.loop
        seen.append((loop, transport._by_loop[loop][0]))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    gc.collect()
    ((loop, sessions),) = seen
    assert loop.is_closed() and loop not in transport._by_loop
    assert sessions and all(session.closed for session in sessions.values())


async def test_calling_the_blocking_hook_inside_a_running_loop_says_what_to_do_and_sends_nothing(emulator):
    with pytest.raises(RuntimeError, match=r"await OpusAsyncHook's methods there, or call OpusHook in a thread"):
        fast_hook().get_workflow(DEFAULT_WORKFLOW_ID)
    assert emulator.requests() == []


def test_a_billed_call_after_the_server_closed_the_idle_connection_takes_a_new_one(monkeypatch):
    # The blocking hook's loop sleeps between calls: a kept-alive connection the server has closed meanwhile (an
    # idle timeout) must not carry the next call, or a billed one fails as possibly sent.
    idle_timeout = threading.Event()

    def answer(method: str, path: str, send) -> None:
        body = b'{"jobExecutionId": "j2"}' if method == "POST" else b'{"status": "COMPLETED"}'
        send(http_response(body).replace(b"Connection: close\r\n", b""))  # keep-alive
        idle_timeout.wait(10)  # then the server hangs up, once the hook's call is over

    with RawServer(answer) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", server.connection_json())
        hook = OpusHook(retry_limit=0)
        assert hook.get_job_status("j1") == "COMPLETED"
        idle_timeout.set()
        deadline = time.monotonic() + 10
        while any(thread.is_alive() for thread in server._threads[1:]) and time.monotonic() < deadline:
            time.sleep(0.01)  # until the server has closed the connection it answered on
        assert hook.initiate_job("wf", "t", "d") == "j2"
    assert server.requests == [("GET", "/job/j1/status"), ("POST", "/job/initiate")]
