"""hooks/opus.py: OpusHook against the emulator over real loopback HTTP: full jobs, faults, waiting, and no leaks."""

from __future__ import annotations

import json
import logging
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
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import assert_grew_from_30_to_600, closed_port, fast_hook, running_job, start_job
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
        notes_url = hook.upload_file(notes, access_scope="workspace")
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
    assert "read timeout" in str(info.value)
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


def test_503_on_initiate_is_retried_and_bills_once(emulator):
    emulator.inject("initiate_job", {"status": 503}, {"status": 429})
    fast_hook().initiate_job(DEFAULT_WORKFLOW_ID, "t", "d")
    assert [r["status"] for r in emulator.requests("initiate_job")] == [503, 429, 201]
    assert len(emulator.jobs()) == 1


def test_500_on_initiate_is_not_retried(emulator):
    emulator.inject("initiate_job", {"status": 500})
    with pytest.raises(OpusError, match="HTTP 500"):
        fast_hook().initiate_job(DEFAULT_WORKFLOW_ID, "t", "d")
    assert len(emulator.requests("initiate_job")) == 1


def test_presigned_put_is_retried_and_carries_no_key(emulator, tmp_path):
    path = tmp_path / "scan.png"
    path.write_bytes(b"\x89PNG" + b"0" * 5000)
    emulator.inject("storage_put", {"status": 503})
    fast_hook().upload_file(path)
    puts = emulator.requests("storage_put")
    assert [p["status"] for p in puts] == [503, 200]
    assert not any(p["had_service_key"] for p in puts)
    (upload,) = emulator.uploads()
    assert upload["size"] == path.stat().st_size
    assert upload["content_type"] == "image/png"


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
