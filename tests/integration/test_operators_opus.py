"""operators/opus.py: the execute, upload and results operators against the emulator, over real loopback HTTP."""

from __future__ import annotations

import time

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.exceptions import (
    OpusError,
    OpusInvalidArgumentError,
    OpusJobFailedError,
    OpusJobTimeoutError,
    OpusPayloadError,
)
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.operators.opus import OpusGetJobResultsOperator, OpusUploadOperator
from airflow_provider_opus.triggers.opus import OpusJobTrigger
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import execute_op
from tests.support.task_context import VALID_INPUTS, FakeTaskStateStore, make_context

pytestmark = pytest.mark.integration


def api_calls(emulator, endpoint: str) -> int:
    return len(emulator.requests(endpoint))


# -- execute: sync ---------------------------------------------------------------------------------


def test_execute_waits_and_returns_the_job_id(emulator):
    context = make_context()
    job_id = execute_op().execute(context)
    (job,) = emulator.jobs()
    assert job_id == job["jobExecutionId"]
    assert emulator.jobs()[0]["status"] == "COMPLETED"
    assert context["ti"].xcom["job_execution_id"] == job_id
    assert context["ti"].xcom["_link_OpusWorkflowLink"] == f"https://app.opus.com/app/workflow/{DEFAULT_WORKFLOW_ID}"
    # Stored before the execute call (a retry reattaches), forgotten once the task succeeded.
    assert context["task_state_store"].history[0] == ("set", "opus_job_execution_id", job_id)
    assert context["task_state_store"].history[-1] == ("delete", "opus_job_execution_id", None)
    assert job["title"] == "opus_dag.run"
    assert "manual__2026-01-01" in job["description"]


def test_payload_is_sent_typed_with_display_names(emulator):
    execute_op(inputs={**VALID_INPUTS, "Reviewers": ["ann", "bob"]}).execute(make_context())
    (job,) = emulator.jobs()
    sent = job["jobPayloadSchemaInstance"]
    assert sent["workflow_input_a0hk6ujuo"] == {"value": 0.8, "type": "float", "displayName": "Threshold"}
    assert sent["workflow_input_2kbsjrx1y"]["value"] == ["ann", "bob"]


def test_invalid_payload_fails_before_any_billed_call(emulator, tmp_path):
    op = execute_op(inputs={"Customer Name": 3, "Due Date": "tomorrow", "Foo": 1, "Invoice": str(tmp_path / "x.pdf")})
    with pytest.raises(OpusPayloadError) as info:
        op.execute(make_context())
    message = str(info.value)
    assert message.startswith(f"4 inputs are invalid for workflow {DEFAULT_WORKFLOW_ID}")
    assert "'Threshold' is required" in message and "'Foo' is not an input" in message
    assert isinstance(info.value, AirflowFailException)
    assert api_calls(emulator, "initiate_job") == 0
    assert api_calls(emulator, "get_upload_url") == 0


def test_missing_local_file_fails_before_upload_and_initiate(emulator, tmp_path):
    op = execute_op(inputs={**VALID_INPUTS, "Invoice": str(tmp_path / "missing.pdf")})
    with pytest.raises(OpusInvalidArgumentError, match=r"missing\.pdf' does not exist"):
        op.execute(make_context())
    assert emulator.requests() and api_calls(emulator, "initiate_job") == 0
    assert api_calls(emulator, "get_upload_url") == 0


def test_local_file_inputs_are_uploaded_first(emulator, tmp_path):
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 invoice")
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    op = execute_op(inputs={**VALID_INPUTS, "Invoice": str(invoice), "Supporting Documents": [str(notes)]})
    op.execute(make_context())
    (job,) = emulator.jobs()
    assert job["status"] == "COMPLETED"
    puts = emulator.requests("storage_put")
    assert len(puts) == 2 and not any(put["had_service_key"] for put in puts)
    sent = job["jobPayloadSchemaInstance"]
    assert sent["workflow_input_h69vx5i4a"]["value"].startswith(emulator.storage_url)


def test_failed_job_fails_the_task_with_the_audit_tail(emulator):
    # An emulator-issued fileUrl that was never PUT makes the job fail, as a real missing file would.
    file_url = OpusHook().get_upload_url("pdf")["fileUrl"]
    with pytest.raises(OpusJobFailedError) as info:
        execute_op(inputs={**VALID_INPUTS, "Invoice": file_url}).execute(make_context())
    assert "ended with status 'FAILED'" in str(info.value)
    assert "never uploaded" in str(info.value)
    assert isinstance(info.value, AirflowFailException)


def test_sync_timeout_says_the_job_keeps_running(emulator):
    emulator.configure(job_duration=30)
    with pytest.raises(OpusJobTimeoutError, match="keeps running"):
        execute_op(timeout=0.3).execute(make_context())


def test_no_wait_returns_while_the_job_runs(emulator):
    emulator.configure(job_duration=30)
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    assert OpusHook().get_job_status(job_id) == "IN PROGRESS"


def test_json_string_and_instance_inputs(emulator):
    import json

    execute_op(inputs=json.dumps(VALID_INPUTS)).execute(make_context())
    instance = {
        "workflow_input_we4tej0ly": {"value": "ACME", "type": "str"},
        "workflow_input_a0hk6ujuo": {"value": 1.5, "type": "float"},
        "workflow_input_h69vx5i4a": {"value": VALID_INPUTS["Invoice"], "type": "file"},
        "workflow_input_k3ayfjyh7": {"value": "2026-01-02", "type": "date"},
    }
    execute_op(inputs=None, job_payload_schema_instance=instance).execute(make_context())
    assert [job["status"] for job in emulator.jobs()] == ["COMPLETED", "COMPLETED"]
    with pytest.raises(OpusPayloadError):
        execute_op(inputs=None, job_payload_schema_instance={"nope": {"value": 1, "type": "str"}}).execute(
            make_context()
        )
    assert len(emulator.jobs()) == 2


def test_constructor_rejects_contradictory_arguments():
    with pytest.raises(OpusInvalidArgumentError, match="not both"):
        execute_op(job_payload_schema_instance={})
    with pytest.raises(OpusInvalidArgumentError, match="access_scope"):
        execute_op(access_scope="public")
    with pytest.raises(OpusInvalidArgumentError, match="poll_interval"):
        execute_op(poll_interval=0)
    with pytest.raises(
        OpusInvalidArgumentError, match=r"Task 'run': max_poll_interval must be .* at least poll_interval"
    ):
        execute_op(poll_interval=60, max_poll_interval=30)


def test_empty_workflow_id_fails_before_any_call(emulator):
    with pytest.raises(OpusInvalidArgumentError, match="workflow_id is empty"):
        execute_op(workflow_id=" ").execute(make_context())
    assert emulator.requests() == [] or api_calls(emulator, "get_workflow") == 0


# -- execute: retry reattaches ---------------------------------------------------------------------


def fail_while_waiting(emulator, store: FakeTaskStateStore, **kwargs) -> str:
    """A first try that started its job, then died while waiting for it."""
    emulator.inject("get_job_status", {"status": 500, "times": 5})
    with pytest.raises(OpusError, match="HTTP 500"):
        execute_op(opus_retry_limit=0, **kwargs).execute(make_context(store))
    emulator.clear_faults()
    return store.get("opus_job_execution_id")


def test_retry_reattaches_to_a_running_job(emulator):
    emulator.configure(job_duration=0.6)
    store = FakeTaskStateStore()
    first_id = fail_while_waiting(emulator, store)
    context = make_context(store)
    retried_id = execute_op().execute(context)  # the retry: same task state, new operator
    assert retried_id == first_id
    assert context["ti"].xcom["job_execution_id"] == first_id
    assert context["ti"].xcom["_link_OpusWorkflowLink"].endswith(DEFAULT_WORKFLOW_ID)
    assert api_calls(emulator, "initiate_job") == 1
    assert api_calls(emulator, "execute_job") == 1


def test_retry_after_completion_returns_at_once(emulator):
    emulator.configure(job_duration=0)
    store = FakeTaskStateStore()
    emulator.inject("get_job_results", {"status": 500, "times": 5})
    with pytest.raises(OpusError):  # the job completed, then the task failed reading its outputs
        execute_op(outlets=[Asset("opus://x")], opus_retry_limit=0).execute(make_context(store))
    first_id = store.get("opus_job_execution_id")
    emulator.clear_faults()
    assert execute_op().execute(make_context(store)) == first_id
    assert api_calls(emulator, "initiate_job") == 1


def test_retry_after_a_failed_job_starts_a_new_one(emulator):
    emulator.configure(job_duration=5)
    store = FakeTaskStateStore()
    first_id = fail_while_waiting(emulator, store)
    emulator.set_job_status(first_id, "FAILED")
    emulator.configure(job_duration=0)
    second_id = execute_op().execute(make_context(store))
    assert second_id != first_id
    assert api_calls(emulator, "initiate_job") == 2


def test_clearing_a_succeeded_task_runs_a_new_job(emulator):
    store = FakeTaskStateStore()
    first_id = execute_op().execute(make_context(store))
    assert execute_op().execute(make_context(store)) != first_id
    assert api_calls(emulator, "initiate_job") == 2


def test_lost_execute_answer_is_not_billed_twice_on_retry(emulator):
    emulator.configure(job_duration=0.5)
    emulator.inject("execute_job", {"drop": "after"})
    store = FakeTaskStateStore()
    with pytest.raises(OpusError):
        execute_op().execute(make_context(store))
    job_id = execute_op().execute(make_context(store))
    assert [job["jobExecutionId"] for job in emulator.jobs()] == [job_id]
    assert api_calls(emulator, "execute_job") == 1


# -- execute: deferrable ---------------------------------------------------------------------------


def test_deferrable_defers_with_a_serialisable_trigger(emulator):
    emulator.configure(job_duration=30)
    context = make_context()
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        execute_op(deferrable=True, timeout=600, poll_interval=5).execute(context)
    trigger = info.value.trigger
    assert isinstance(trigger, OpusJobTrigger)
    assert info.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_opus.triggers.opus.OpusJobTrigger"
    assert kwargs["job_execution_id"] == context["ti"].xcom["job_execution_id"]
    assert kwargs["poll_interval"] == 5 and kwargs["opus_conn_id"] == "opus_default"
    assert before + 600 <= kwargs["end_time"] <= time.time() + 600
    assert SERVICE_KEY not in repr(kwargs)


def test_deferrable_does_not_defer_a_finished_job(emulator):
    emulator.configure(job_duration=0)
    assert execute_op(deferrable=True).execute(make_context())


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        ({"status": "failed", "job_execution_id": "J", "opus_status": "FAILED"}, OpusJobFailedError, "'FAILED'"),
        ({"status": "timeout", "job_execution_id": "J", "opus_status": "IN PROGRESS"}, OpusJobTimeoutError, "keeps"),
        ({"status": "error", "job_execution_id": "J", "message": "HTTP 401"}, OpusError, "HTTP 401"),
        ({"status": "success", "job_execution_id": "J", "opus_status": "WEIRD"}, OpusError, "WEIRD"),
        ({"status": "banana"}, OpusError, "banana"),
        (None, OpusError, "Unexpected event"),
    ],
)
def test_execute_complete_fails_closed(emulator, event, error, message):
    with pytest.raises(error, match=message):
        execute_op().execute_complete(make_context(), event)


def test_execute_complete_success_returns_the_id_and_fills_asset_extra(emulator):
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    time.sleep(0.5)
    asset = Asset("opus://invoice-review")
    op = execute_op(outlets=[asset])
    context = make_context()
    event = {"status": "success", "job_execution_id": job_id, "opus_status": "COMPLETED", "message": "done"}
    assert op.execute_complete(context, event) == job_id
    extra = context["outlet_events"][asset].extra
    assert extra["job_execution_id"] == job_id
    assert extra["output_files"] and extra["output_files"][0].endswith(f"output_{job_id}.pdf")


def test_on_kill_says_the_job_keeps_running(emulator, capsys):
    op = execute_op(wait_for_completion=False)
    job_id = op.execute(make_context())
    capsys.readouterr()
    op.on_kill()
    out = capsys.readouterr()
    assert f"Opus has no cancel call: job {job_id} keeps running" in out.out + out.err


# -- upload ------------------------------------------------------------------------------------------


def test_upload_one_and_many(emulator, tmp_path):
    a, b = tmp_path / "a.pdf", tmp_path / "b.png"
    a.write_bytes(b"%PDF")
    b.write_bytes(b"\x89PNG")
    single = OpusUploadOperator(task_id="u1", files=str(a)).execute(make_context())
    many = OpusUploadOperator(task_id="u2", files=[str(a), str(b)]).execute(make_context())
    assert isinstance(single, str) and single.endswith(".pdf")
    assert isinstance(many, list) and [u.rsplit(".", 1)[1] for u in many] == ["pdf", "png"]
    assert all(put["had_service_key"] is False for put in emulator.requests("storage_put"))


def test_upload_checks_every_file_before_the_first_request(emulator, tmp_path):
    good, empty = tmp_path / "good.pdf", tmp_path / "empty.pdf"
    good.write_bytes(b"%PDF")
    empty.write_bytes(b"")
    bad = tmp_path / "script.sh"
    bad.write_text("echo")
    op = OpusUploadOperator(task_id="u", files=[str(good), str(empty), str(bad), str(tmp_path)])
    with pytest.raises(OpusInvalidArgumentError) as info:
        op.execute(make_context())
    text = str(info.value)
    assert "empty.pdf' is empty" in text and "'.sh'" in text and "is a directory" in text
    assert emulator.requests("get_upload_url") == []


# -- results -----------------------------------------------------------------------------------------


def test_results_operator_returns_results_and_audit(emulator):
    job_id = execute_op().execute(make_context())
    out = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())
    assert out["job_execution_id"] == job_id and out["status"] == "COMPLETED"
    assert out["results"]["data"]["verdict"] == "PASS"
    assert out["audit_trail"][-1]["action"] == "Job completed successfully"
    import json

    json.dumps(out)  # plain JSON for XCom
    lean = OpusGetJobResultsOperator(task_id="r2", job_execution_id=job_id, include_audit_log=False)
    assert lean.execute(make_context())["audit_trail"] == []


def test_results_operator_refuses_unfinished_and_failed_jobs(emulator):
    emulator.configure(job_duration=30)
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    with pytest.raises(OpusError, match="still IN PROGRESS: wait for it first"):
        OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())
    emulator.set_job_status(job_id, "FAILED")
    with pytest.raises(OpusJobFailedError):
        OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())


def test_task_timeout_while_waiting_says_the_job_keeps_running(emulator, mocker, capsys):
    from airflow.sdk.exceptions import AirflowTaskTimeout

    mocker.patch.object(OpusHook, "wait_for_job", side_effect=AirflowTaskTimeout("execution_timeout"))
    with pytest.raises(AirflowTaskTimeout):
        execute_op().execute(make_context())
    (job,) = emulator.jobs()
    out = capsys.readouterr()
    assert f"Opus has no cancel call: job {job['jobExecutionId']} keeps running" in out.out + out.err
