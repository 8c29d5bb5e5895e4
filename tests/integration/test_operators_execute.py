"""operators/execute.py: OpusExecuteJobOperator against the emulator, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowTaskTimeout, TaskDeferred
from airflow.sdk import Asset

from airflow_provider_opus.compat import AIRFLOW_VERSION, HAS_TASK_STATE_STORE
from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusError,
    OpusInvalidArgumentError,
    OpusJobFailedError,
    OpusJobTimeoutError,
    OpusPayloadError,
)
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.operators.execute import OpusExecuteJobOperator
from airflow_provider_opus.payload import build_job_payload
from airflow_provider_opus.triggers.opus import OpusJobTrigger
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import execute_op, in_dag, render_task
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
    # The emulator's connection points app_url at its own workflow pages.
    assert context["ti"].xcom["_link_OpusWorkflowLink"] == f"{emulator.app_url}/app/workflow/{DEFAULT_WORKFLOW_ID}"
    if HAS_TASK_STATE_STORE:
        # Stored before the execute call (a retry reattaches), forgotten once the task succeeded.
        assert context["task_state_store"].history[0] == ("set", "opus_job_execution_id", job_id)
        assert context["task_state_store"].history[-1] == ("delete", "opus_job_execution_id", None)
    else:  # durable has no effect below 3.3 (common-compat's stand-in): nothing stored, even given a store
        assert context["task_state_store"].history == []
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

#: Reattaching needs the task state store of Airflow 3.3+; below it every try starts a new job
#: (test_below_airflow_3_3_every_try_starts_a_new_job_and_says_so).
needs_task_state_store = pytest.mark.skipif(
    not HAS_TASK_STATE_STORE, reason=f"Airflow {AIRFLOW_VERSION} has no task state store: a retry starts a new job"
)


def fail_while_waiting(emulator, store: FakeTaskStateStore, **kwargs) -> str:
    """A first try that started its job, then died while waiting for it."""
    emulator.inject("get_job_status", {"status": 500, "times": 5})
    with pytest.raises(OpusError, match="HTTP 500"):
        execute_op(opus_retry_limit=0, **kwargs).execute(make_context(store))
    emulator.clear_faults()
    return store.get("opus_job_execution_id")


@needs_task_state_store
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


@needs_task_state_store
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
    fail_while_waiting(emulator, store)
    (first_id,) = [job["jobExecutionId"] for job in emulator.jobs()]  # below 3.3 the store keeps no id
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


@needs_task_state_store
def test_lost_execute_answer_is_not_billed_twice_on_retry(emulator):
    emulator.configure(job_duration=0.5)
    emulator.inject("execute_job", {"drop": "after"})
    store = FakeTaskStateStore()
    with pytest.raises(OpusError):
        execute_op().execute(make_context(store))
    job_id = execute_op().execute(make_context(store))
    assert [job["jobExecutionId"] for job in emulator.jobs()] == [job_id]
    assert api_calls(emulator, "execute_job") == 1


@pytest.mark.skipif(HAS_TASK_STATE_STORE, reason="Airflow 3.3+ reattaches: the tests above")
def test_below_airflow_3_3_every_try_starts_a_new_job_and_says_so(emulator, capsys):
    # As Airflow < 3.3 runs a task: no task state store in the context.
    def context():
        return {key: value for key, value in make_context().items() if key != "task_state_store"}

    emulator.configure(job_duration=0.6)
    emulator.inject("get_job_status", {"status": 500, "times": 5})
    with pytest.raises(OpusError, match="HTTP 500"):
        execute_op(opus_retry_limit=0).execute(context())
    emulator.clear_faults()
    logged(capsys)
    with pytest.warns(UserWarning, match="durable"):  # common-compat's stand-in: taken, so a 3.3 DAG runs unchanged
        retry = execute_op(durable=True)
    retried_id = retry.execute(context())
    assert retry.durable is False  # and without effect
    line = (
        f"Airflow {AIRFLOW_VERSION} has no task state store: a retry of this task starts a new Opus job "
        "(reattaching to a running job needs Airflow 3.3+)"
    )
    assert logged(capsys).count(line) == 1
    assert api_calls(emulator, "initiate_job") == 2
    assert [job["jobExecutionId"] for job in emulator.jobs()][-1] == retried_id


# -- execute: what a retry does with the job of an earlier try, by its status ----------------------


def first_try_died_waiting(emulator, sequence: list[str]) -> tuple[FakeTaskStateStore, str]:
    """A first try whose job (of a scripted status sequence) was started, then the try died waiting for it."""
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, sequence)
    store = FakeTaskStateStore()
    return store, fail_while_waiting(emulator, store)


#: A retry that waits wrongly fails in seconds, not after the default 7 days.
RETRY_TIMEOUT = 10


def logged(capsys) -> str:
    out = capsys.readouterr()
    return out.out + out.err


@needs_task_state_store
@pytest.mark.parametrize("waiting", ["QUEUED", "Reticulating", "AWAITING REVIEW", "in_progress"])
def test_retry_reattaches_to_a_job_in_any_status_that_is_not_final(emulator, capsys, waiting):
    # Waiting, running and unknown statuses alike: only a final status lets a retry start another job.
    emulator.configure(job_duration=1.0)
    store, first_id = first_try_died_waiting(emulator, [waiting, "COMPLETED"])
    assert OpusHook().get_job_status(first_id) == waiting  # what the retry finds
    logged(capsys)
    assert execute_op(timeout=RETRY_TIMEOUT).execute(make_context(store)) == first_id
    assert "Reconnecting to existing job" in logged(capsys)
    assert api_calls(emulator, "initiate_job") == 1
    assert api_calls(emulator, "execute_job") == 1
    assert [job["status"] for job in emulator.jobs()] == ["COMPLETED"]


@needs_task_state_store
@pytest.mark.parametrize("completed", ["COMPLETED", "Completed"])
def test_retry_of_a_completed_job_returns_at_once(emulator, completed):
    store, first_id = first_try_died_waiting(emulator, [completed])
    checks_before = api_calls(emulator, "get_job_status")
    assert execute_op(timeout=RETRY_TIMEOUT).execute(make_context(store)) == first_id
    assert api_calls(emulator, "get_job_status") == checks_before + 1  # the one check that decided
    assert api_calls(emulator, "initiate_job") == 1


@pytest.mark.parametrize("failed", ["FAILED", "Cancelled", "on_hold"])
def test_retry_replaces_a_job_that_failed(emulator, failed):
    store, first_id = first_try_died_waiting(emulator, [failed])
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, None)  # the new job runs its normal course
    failed_statuses = ["on_hold"] if failed == "on_hold" else None  # a DAG author's word counts here too
    second_id = execute_op(failed_statuses=failed_statuses, timeout=RETRY_TIMEOUT).execute(make_context(store))
    assert second_id != first_id
    assert api_calls(emulator, "initiate_job") == 2
    assert [job["status"] for job in emulator.jobs()] == [failed, "COMPLETED"]


def initiated_but_not_executed(emulator) -> tuple[FakeTaskStateStore, str]:
    """A first try that initiated its job, then failed on the execute call, which never reached Opus."""
    emulator.inject("execute_job", {"status": 500})
    store = FakeTaskStateStore()
    with pytest.raises(OpusError, match="HTTP 500"):
        execute_op(opus_retry_limit=0).execute(make_context(store))
    job_id = store.get("opus_job_execution_id")
    assert OpusHook().get_job_status(job_id) == "NOT STARTED"
    return store, job_id


@needs_task_state_store
def test_retry_executes_a_job_that_was_initiated_but_never_executed(emulator, capsys):
    store, job_id = initiated_but_not_executed(emulator)
    logged(capsys)
    context = make_context(store)
    assert execute_op(timeout=RETRY_TIMEOUT).execute(context) == job_id
    assert "was initiated by an earlier try but not executed (status 'NOT STARTED'): executing it now" in logged(capsys)
    assert context["ti"].xcom["job_execution_id"] == job_id
    assert api_calls(emulator, "initiate_job") == 1
    assert [call["status"] for call in emulator.requests("execute_job")] == [500, 201]  # one executed job
    (job,) = emulator.jobs()
    assert job["status"] == "COMPLETED"
    assert job["jobPayloadSchemaInstance"]["workflow_input_we4tej0ly"]["value"] == VALID_INPUTS["Customer Name"]


@needs_task_state_store
def test_retry_whose_execute_conflicts_reattaches(emulator, capsys):
    store, job_id = initiated_but_not_executed(emulator)
    # The earlier execute reached Opus after all, but the retry's status check still reads NOT STARTED:
    # its execute call answers 409, which means the job runs.
    hook = OpusHook()
    schema = hook.get_job_payload_schema(DEFAULT_WORKFLOW_ID)
    hook.execute_job(job_id, build_job_payload(schema, VALID_INPUTS, workflow_id=DEFAULT_WORKFLOW_ID))
    emulator.inject("get_job_status", {"status": 200, "json": {"status": "NOT STARTED"}})
    logged(capsys)
    assert execute_op(timeout=RETRY_TIMEOUT).execute(make_context(store)) == job_id
    assert f"Opus job {job_id} was already executed" in logged(capsys)
    assert api_calls(emulator, "initiate_job") == 1
    assert [call["status"] for call in emulator.requests("execute_job")] == [500, 201, 409]
    assert [job["status"] for job in emulator.jobs()] == ["COMPLETED"]


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


# -- execute: deadlines ----------------------------------------------------------------------------

TIMEOUT_EVENT = {"status": "timeout", "job_execution_id": "J", "opus_status": "IN PROGRESS", "message": "deadline"}
TRY_STARTED = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("timeout", "execution_timeout", "limit"),
    [
        (600, timedelta(seconds=20), "execution_timeout"),
        (None, timedelta(seconds=20), "execution_timeout"),
        (600, timedelta(days=1), "timeout"),
        (600, None, "timeout"),
        (None, None, None),
    ],
)
def test_the_trigger_deadline_is_the_earlier_of_timeout_and_execution_timeout(
    emulator, timeout, execution_timeout, limit
):
    emulator.configure(job_duration=30)
    context = make_context()
    # execution_timeout counts from the start of the try, long before the job was started and checked.
    context["ti"].start_date = datetime.now(timezone.utc) - timedelta(seconds=5)
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        execute_op(deferrable=True, timeout=timeout, execution_timeout=execution_timeout).execute(context)
    end_time = info.value.trigger.serialize()[1]["end_time"]
    assert info.value.kwargs["limit"] == limit
    if limit == "execution_timeout":
        assert end_time == pytest.approx(context["ti"].start_date.timestamp() + 20, abs=0.001)
    elif limit == "timeout":
        assert before + 600 <= end_time <= time.time() + 600
    else:
        assert end_time is None  # timeout=None and no execution_timeout: no deadline at all


def test_execution_timeout_counts_from_now_without_a_try_start(emulator):
    emulator.configure(job_duration=30)
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        execute_op(deferrable=True, execution_timeout=timedelta(seconds=20)).execute(make_context())
    assert before + 20 <= info.value.trigger.serialize()[1]["end_time"] <= time.time() + 20


def test_the_default_timeout_is_seven_days():
    assert OpusExecuteJobOperator(task_id="run", workflow_id="w").timeout == 7 * 24 * 3600
    assert execute_op(timeout=None).timeout is None


def test_passing_execution_timeout_in_the_triggerer_is_a_task_timeout(emulator):
    op = execute_op(execution_timeout=timedelta(seconds=20))
    with pytest.raises(AirflowTaskTimeout, match=r"execution_timeout \(0:00:20\) passed: .*job J keeps running"):
        op.execute_complete(make_context(), TIMEOUT_EVENT, limit="execution_timeout")
    with pytest.raises(OpusJobTimeoutError, match="job J keeps running") as info:
        op.execute_complete(make_context(), TIMEOUT_EVENT, limit="timeout")
    assert not isinstance(info.value, AirflowTaskTimeout)
    # A task deferred before the argument's rename resumes with the kwargs stored then: deadline=.
    with pytest.raises(AirflowTaskTimeout):
        op.execute_complete(make_context(), TIMEOUT_EVENT, deadline="execution_timeout")
    # A task deferred by an earlier provider version resumes without the argument: its own timeout.
    with pytest.raises(OpusJobTimeoutError):
        op.execute_complete(make_context(), TIMEOUT_EVENT)
    # Only a timeout event is a timeout: a failed job stays a failed job.
    failed = {"status": "failed", "job_execution_id": "J", "opus_status": "Cancelled"}
    with pytest.raises(OpusJobFailedError, match="'Cancelled'"):
        op.execute_complete(make_context(), failed, limit="execution_timeout")


def test_a_key_refused_mid_wait_fails_at_once_in_a_worker_and_deferred(emulator, monkeypatch):
    # The worker's calls block (OpusHook, no event loop); the trigger runs on a loop of its own, as in a triggerer.
    async def trigger_events(job_id: str) -> list[dict]:
        return [event.payload async for event in OpusJobTrigger(job_id, poll_interval=0.05, retry_delay=0.01).run()]

    job_id = execute_op(wait_for_completion=False).execute(make_context())
    emulator.set_job_status(job_id, "IN PROGRESS")
    revoked = {"conn_type": "opus", "host": emulator.url, "password": SERVICE_KEY + "-revoked"}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(revoked))  # the key is revoked while the job runs
    with pytest.raises(OpusAuthError) as in_worker:
        execute_op().poll_until_complete(job_id, make_context())
    (event,) = asyncio.run(trigger_events(job_id))
    assert event["status"] == "error" and event["error_type"] == "OpusAuthError"
    with pytest.raises(OpusAuthError) as deferred:
        execute_op(deferrable=True).execute_complete(make_context(), event)
    for error in (in_worker.value, deferred.value):
        assert isinstance(error, AirflowFailException), "Airflow would retry a refused key"
        assert "the service key was refused" in str(error)
        assert SERVICE_KEY not in str(error)
    assert str(deferred.value) == str(in_worker.value)


def test_task_timeout_while_waiting_says_the_job_keeps_running(emulator, mocker, capsys):
    mocker.patch.object(OpusHook, "wait_for_job", side_effect=AirflowTaskTimeout("execution_timeout"))
    with pytest.raises(AirflowTaskTimeout):
        execute_op().execute(make_context())
    (job,) = emulator.jobs()
    out = capsys.readouterr()
    assert f"Opus has no cancel call: job {job['jobExecutionId']} keeps running" in out.out + out.err


# -- hostile input: values JSON cannot carry, .json strings, argument bounds -----------------------


def test_values_json_cannot_carry_fail_before_the_job_is_initiated(emulator):
    import datetime as dt

    inputs = {**VALID_INPUTS, "Metadata": {"when": [1, 2, dt.datetime(2025, 1, 1)]}}
    with pytest.raises(OpusPayloadError, match=r"'Metadata'\['when'\]\[2\]: datetime .* is not JSON: give a string"):
        execute_op(inputs=inputs).execute(make_context())
    assert api_calls(emulator, "initiate_job") == 0


@pytest.mark.parametrize(
    ("argument", "text", "shown"),
    [
        ("inputs", '{"Threshold": NaN}', "NaN"),
        ("inputs", '{"Metadata": {"x": [-Infinity]}}', "-Infinity"),
        ("job_payload_schema_instance", '{"workflow_input_a0hk6ujuo": {"value": 1e400, "type": "float"}}', "1e400"),
    ],
)
def test_json_text_with_nan_or_infinity_is_refused_naming_the_argument(emulator, argument, text, shown):
    with pytest.raises(
        OpusInvalidArgumentError,
        match=rf"^{argument} is JSON text with {shown}, which is not a finite number: give a finite number or null$",
    ):
        execute_op(**{"inputs": None, argument: text}).execute(make_context())
    assert api_calls(emulator, "initiate_job") == 0


def test_strings_ending_in_json_are_plain_values_outside_the_instance(emulator, tmp_path):
    (tmp_path / "orders.json").write_text('{"substituted": true}')
    with in_dag(tmp_path) as dag:
        op = execute_op(
            inputs={**VALID_INPUTS, "Customer Name": "orders.json", "Reviewers": ["/data/team.json", "{{ ds }}.json"]},
            title="Import orders.json",
            description="Orders of {{ ds }} from orders.json",
        )
    op.execute(render_task(op, dag))
    (job,) = emulator.jobs()
    sent = {item["displayName"]: item["value"] for item in job["jobPayloadSchemaInstance"].values()}
    assert sent["Customer Name"] == "orders.json"
    assert sent["Reviewers"] == ["/data/team.json", "2026-01-02.json"]
    assert job["title"] == "Import orders.json"
    assert job["description"] == "Orders of 2026-01-02 from orders.json"


INSTANCE_TEMPLATE = """{
  "workflow_input_we4tej0ly": {"value": "{{ params.customer }}", "type": "str"},
  "workflow_input_a0hk6ujuo": {"value": 0.5, "type": "float"},
  "workflow_input_h69vx5i4a": {"value": "https://files.opus.com/media/invoice.pdf", "type": "file"},
  "workflow_input_k3ayfjyh7": {"value": "{{ ds }}", "type": "date"}
}"""


def test_instance_json_file_is_loaded_and_rendered(emulator, tmp_path):
    (tmp_path / "payloads").mkdir()
    (tmp_path / "payloads" / "invoice.json").write_text(INSTANCE_TEMPLATE)
    with in_dag(tmp_path) as dag:
        op = execute_op(inputs=None, job_payload_schema_instance="payloads/invoice.json")
    op.execute(render_task(op, dag, customer="ACME"))
    (job,) = emulator.jobs()
    sent = job["jobPayloadSchemaInstance"]
    assert sent["workflow_input_we4tej0ly"]["value"] == "ACME"
    assert sent["workflow_input_k3ayfjyh7"]["value"] == "2026-01-02"


def test_mapped_instance_json_files_are_loaded_and_rendered(emulator, tmp_path):
    for customer in ("ACME", "Globex"):
        (tmp_path / f"{customer}.json").write_text(INSTANCE_TEMPLATE.replace("{{ params.customer }}", customer))
    with in_dag(tmp_path) as dag:
        mapped = OpusExecuteJobOperator.partial(
            task_id="run", workflow_id=DEFAULT_WORKFLOW_ID, poll_interval=0.05, opus_retry_delay=0.01
        ).expand(job_payload_schema_instance=["ACME.json", "Globex.json"])
    for map_index in (0, 1):
        context = render_task(mapped, dag, map_index=map_index)
        context["task"].execute(context)
    customers = [job["jobPayloadSchemaInstance"]["workflow_input_we4tej0ly"]["value"] for job in emulator.jobs()]
    assert customers == ["ACME", "Globex"]


def test_missing_instance_file_is_named_before_any_call(emulator, tmp_path):
    with in_dag(tmp_path) as dag:
        op = execute_op(inputs=None, job_payload_schema_instance="payloads/missing.json")
    with pytest.raises(
        OpusInvalidArgumentError,
        match=r"Task 'run': job_payload_schema_instance file 'payloads/missing.json' was not found: "
        r"put it next to the DAG file or in a template_searchpath folder",
    ):
        render_task(op, dag)
    # Outside a DAG there is no folder to look in: the same error.
    with pytest.raises(OpusInvalidArgumentError, match=r"'payloads/missing\.json' was not found"):
        render_task(execute_op(inputs=None, job_payload_schema_instance="payloads/missing.json"), None)
    assert emulator.requests() == []


def test_workflow_id_must_be_a_string_when_parsed_and_when_rendered(emulator, tmp_path):
    with pytest.raises(OpusInvalidArgumentError, match=r"^Task 'run': workflow_id must be a string, got int 5: give"):
        execute_op(workflow_id=5)
    with in_dag(tmp_path, render_template_as_native_obj=True) as dag:
        op = execute_op(workflow_id="{{ params.workflow }}")
    context = render_task(op, dag, workflow=5)
    assert op.workflow_id == 5
    with pytest.raises(OpusInvalidArgumentError, match=r"workflow_id must be a string, got int 5: give the id from"):
        op.execute(context)
    assert emulator.requests() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # title=42 reached POST /job/initiate.
        ({"title": 42}, "title must be a non-empty string or None, got int 42"),
        ({"description": ["a"]}, "description must be a non-empty string or None, got list ['a']"),
        ({"ref_user_id": 7}, "ref_user_id must be a non-empty string or None, got int 7"),
        ({"wait_for_completion": "false"}, "wait_for_completion must be True or False, got 'false'"),
        ({"deferrable": 1}, "deferrable must be True or False, got int 1"),
        ({"inputs": [("Threshold", 0.8)]}, "inputs must be a dict of input name to value, or JSON text, got list"),
        ({"inputs": None, "job_payload_schema_instance": 5}, "job_payload_schema_instance must be a dict of input"),
    ],
)
def test_arguments_of_the_wrong_type_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(OpusInvalidArgumentError, match=f"^Task 'run': {re.escape(message)}"):
        execute_op(**kwargs)


def test_a_title_rendered_to_a_wrong_type_fails_before_any_billed_call(emulator, tmp_path):
    with in_dag(tmp_path, render_template_as_native_obj=True) as dag:
        op = execute_op(title="{{ params.title }}")
    context = render_task(op, dag, title=42)
    with pytest.raises(OpusInvalidArgumentError, match="title must be a non-empty string, got int 42"):
        op.execute(context)
    assert emulator.requests("initiate_job") == [] and emulator.requests("execute_job") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": float("nan")}, r"timeout must be positive and at most 31536000 s \(365 days\), or None; got nan"),
        ({"timeout": 1e300}, r"timeout must be positive and at most 31536000 s \(365 days\), or None; got 1e\+300"),
        ({"timeout": "60"}, "timeout must be a number of seconds or None, got '60'"),
        ({"poll_interval": 1e300}, r"poll_interval must be at most 31536000 s \(365 days\), got 1e\+300"),
        ({"max_poll_interval": float("inf")}, r"max_poll_interval must be at most 31536000 s \(365 days\), got inf"),
    ],
)
def test_wait_arguments_are_checked_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(OpusInvalidArgumentError, match=rf"^Task 'run': {message}$"):
        execute_op(**kwargs)
