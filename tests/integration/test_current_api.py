"""Today's Opus API, end to end against the emulator's strict current generation (issue #18's "Done when").

The current generation refuses unknown body keys and requires ``callbackUrl``; ``opus_default`` carries
the emulator's own callback receiver as ``callback_url``.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_opus.compat import HAS_TASK_STATE_STORE
from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.exceptions import (
    OpusConnectionConfigError,
    OpusInvalidArgumentError,
    OpusJobFailedError,
    OpusNotFoundError,
    OpusPayloadError,
)
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.operators.opus import OpusGetJobResultsOperator, OpusUploadOperator
from airflow_provider_opus.sensors.opus import OpusJobSensor
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import execute_op
from tests.support.task_context import FakeTaskStateStore, make_context

pytestmark = pytest.mark.integration

CONTRACT_WORKFLOW_ID = "ContractCheck001"
VERSION_1_ID = "0a6c1b52-6f0e-4d3b-8c7a-1e2f3a4b5c61"
GRAPH_WORKFLOW_ID = "5b0c9a7e-2f4d-4c1a-9e3b-7d8f6a1c2e40"
FILE_ITEM = {"id": "file", "variable_name": "file", "allowed_types": [{"type": "file"}]}


def invoice(tmp_path, size: int = 20_000):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"%PDF-1.4\n" + b"x" * (size - 9))
    return path


def test_the_usual_chain_uploads_executes_waits_and_hands_outputs_on(current_emulator, tmp_path):
    # Not deferrable here; the example DAGs run the deferrable chain against this generation too.
    uploaded = OpusUploadOperator(task_id="upload", files=str(invoice(tmp_path))).execute(make_context())
    inputs = {"Customer Name": "ACME GmbH", "Threshold": 0.8, "Invoice": uploaded, "Due Date": "2026-12-01"}
    job_id = execute_op(inputs=inputs, wait_for_completion=False).execute(make_context())
    assert OpusJobSensor(task_id="wait", job_execution_id=job_id, poke_interval=0.05).execute(make_context()) is None
    context = make_context()
    value = OpusGetJobResultsOperator(
        task_id="results", job_execution_id=job_id, workflow_id=DEFAULT_WORKFLOW_ID
    ).execute(context)

    assert value["status"] == "COMPLETED"  # read with one more call: today's results carry no status
    assert value["outputs"]["Verdict"] == "PASS" and value["outputs"]["Reviewer Comments"]
    assert context["ti"].xcom["Verdict"] == "PASS"  # by display name, for results.output["Verdict"]
    assert value["output_files"] == [value["outputs"]["Generated Report"]]
    audit = value["audit_trail"]  # the node-level object, as Opus sent it
    assert audit["failed_nodes"] == [] and audit["nb_executed_nodes"] == audit["nb_nodes"]
    # What was sent: originalName on the upload, callbackUrl on the execute call (and nothing the strict
    # server does not know, or it would have refused the call).
    (upload,) = current_emulator.uploads()
    assert upload["originalName"] == "invoice.pdf" and upload["accessScope"] == "organization"
    (job,) = current_emulator.jobs()
    assert job["callbackUrl"] == current_emulator.callback_url


def test_a_callback_reaches_the_receiver_when_the_job_ends(current_emulator):
    job_id = execute_op().execute(make_context())
    # The emulator POSTs when it notices the end, a moment after the status said COMPLETED; the callback of
    # an earlier test's job can land after the emulator's reset, so this job's is looked for.
    callbacks = wait_for(lambda: [c for c in current_emulator.callbacks() if c["body"]["jobExecutionId"] == job_id])
    assert [c["body"]["status"] for c in callbacks] == ["COMPLETED"]


def wait_for(read, tries: int = 100):
    import time

    for _ in range(tries):
        if found := read():
            return found
        time.sleep(0.05)
    raise AssertionError("nothing arrived in 5 s")


@pytest.mark.parametrize("version", [1, "1", VERSION_1_ID])
def test_a_run_pinned_to_version_1_reads_and_initiates_version_1(current_emulator, version):
    # Version 1 takes Notes; the latest active (2) requires Jurisdiction instead, so the inputs pass only
    # when the schema read was version 1's, and the job runs only if it was pinned to version 1 too.
    inputs = {"Counterparty": "ACME GmbH", "Notes": "renewal"}
    context = make_context()
    job_id = execute_op(workflow_id=CONTRACT_WORKFLOW_ID, workflow_version=version, inputs=inputs).execute(context)
    (job,) = current_emulator.jobs()
    assert job["jobExecutionId"] == job_id and job["status"] == "COMPLETED"
    assert job["workflowVersion"] == 1 and job["workflowVersionId"] == VERSION_1_ID
    query = "workflowVersionId=" + VERSION_1_ID if version == VERSION_1_ID else "version=1"
    assert context["ti"].xcom["_link_OpusWorkflowLink"].endswith(f"/app/workflow/{CONTRACT_WORKFLOW_ID}?{query}")


def test_an_unpinned_run_checks_the_latest_versions_inputs_before_any_billed_call(current_emulator):
    with pytest.raises(OpusPayloadError, match="'Jurisdiction' is required"):
        execute_op(workflow_id=CONTRACT_WORKFLOW_ID, inputs={"Counterparty": "A"}).execute(make_context())
    assert current_emulator.requests("initiate_job") == []


def test_a_failed_jobs_error_names_its_failed_node_and_its_data(current_emulator):
    current_emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["IN PROGRESS", "FAILED"])
    with pytest.raises(OpusJobFailedError) as raised:
        execute_op().execute(make_context())
    message = str(raised.value)
    assert "Failed nodes:\n  node workflow_output: " in message
    assert "Job ended with status FAILED (emulator status sequence)" in message
    assert raised.value.audit_tail[0]["node"] == "workflow_output"


def test_a_file_over_10_mb_fails_before_any_call(current_emulator, tmp_path):
    big = invoice(tmp_path, 10 * 1024 * 1024 + 1)
    with pytest.raises(OpusInvalidArgumentError, match=r"\(10485761 bytes\) is larger than the 10485760 bytes"):
        OpusUploadOperator(task_id="upload", files=str(big)).execute(make_context())
    assert current_emulator.requests() == []
    # Given as an input, it fails once the workflow says which inputs are files: still nothing billed or uploaded.
    with pytest.raises(OpusInvalidArgumentError, match="larger than the 10485760 bytes"):
        execute_op(
            inputs={"Customer Name": "A", "Threshold": 1, "Invoice": str(big), "Due Date": "2026-12-01"}
        ).execute(make_context())
    assert [request["endpoint"] for request in current_emulator.requests()] == ["get_workflow"]


def without_callback_url(emulator, monkeypatch) -> None:
    extra = {key: value for key, value in emulator.connection_extra().items() if key != "callback_url"}
    conn = {"conn_type": "opus", "host": emulator.url, "password": SERVICE_KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))


def test_a_connection_without_callback_url_fails_naming_it_and_the_job(current_emulator, monkeypatch):
    without_callback_url(current_emulator, monkeypatch)
    store = FakeTaskStateStore()
    with pytest.raises(OpusConnectionConfigError) as raised:
        execute_op().execute(make_context(store))
    (job,) = current_emulator.jobs()
    message = str(raised.value)
    assert f"Opus refused to execute job {job['jobExecutionId']} because no callback URL was sent" in message
    assert "callbackUrl must be a URL address" in message
    assert "Set callback_url in the Opus connection 'opus_default'" in message
    assert "the provider still polls" in message
    assert f"Job {job['jobExecutionId']} was initiated and not executed" in message
    expected = "executes that same job" if HAS_TASK_STATE_STORE else "a retry initiates a new job"
    assert expected in message
    assert job["status"] == "NOT STARTED"


@pytest.mark.skipif(not HAS_TASK_STATE_STORE, reason="below Airflow 3.3 a retry cannot find the job")
def test_after_the_connection_is_fixed_a_retry_executes_that_same_job(current_emulator, monkeypatch):
    without_callback_url(current_emulator, monkeypatch)
    store = FakeTaskStateStore()
    with pytest.raises(OpusConnectionConfigError):
        execute_op().execute(make_context(store))
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", current_emulator.connection_json())  # the user's fix
    job_id = execute_op().execute(make_context(store))
    (job,) = current_emulator.jobs()
    assert job["jobExecutionId"] == job_id and job["status"] == "COMPLETED"
    assert len(current_emulator.requests("initiate_job")) == 1


def test_a_v2_graph_workflow_runs_with_inputs_by_display_name(current_emulator, tmp_path):
    notes = tmp_path / "brief.txt"
    notes.write_text("sources")
    inputs = {
        "Topic": "battery recycling",
        "Parameters": {"depth": 2, "languages": ["en", "de"]},  # a json_string input
        "workflow_input_sr2v7b5kj": [str(notes), "https://files.opus.com/media/a.pdf"],  # no display name
    }
    job_id = execute_op(workflow_id=GRAPH_WORKFLOW_ID, inputs=inputs).execute(make_context())
    (job,) = current_emulator.jobs()
    instance = job["jobPayloadSchemaInstance"]
    assert instance["workflow_input_pm8r3x6zn"] == {
        "value": '{"depth": 2, "languages": ["en", "de"]}',
        "type": "json_string",
        "displayName": "Parameters",
    }
    files = instance["workflow_input_sr2v7b5kj"]
    assert files["type"] == "array" and files["typeDefinition"] == FILE_ITEM
    assert files["value"][1] == "https://files.opus.com/media/a.pdf" and files["value"][0].startswith("http")
    (job,) = current_emulator.jobs()
    assert job["jobExecutionId"] == job_id and job["status"] == "COMPLETED"  # its Input node took both


def test_a_short_id_opus_does_not_know_says_v2_ids_are_uuids(current_emulator):
    with pytest.raises(OpusNotFoundError, match=r"v2 workflows use UUIDs: give the id from app\.opus\.com/app/"):
        OpusHook().get_workflow("NoSuchWorkflow01")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "cron"}, "source must be one of email-agent, chat-agent, scheduled"),
        ({"workspaces": [1]}, "workspaces must be a list of workspace ids"),
        ({"workflow_version": 0}, "workflow_version must be a version number"),
        ({"access_scope": "workspace"}, "access_scope 'workspace' needs the workspace that owns the files"),
    ],
)
def test_initiate_extras_are_checked_when_the_dag_is_parsed(current_emulator, kwargs, message):
    with pytest.raises(OpusInvalidArgumentError, match=message):
        execute_op(**kwargs)
    assert current_emulator.requests() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workflow_version": "latest"}, "workflow_version must be a version number"),
        ({"callback_url": "http://hooks.example.com/x"}, "Task 'run': callback_url 'http://hooks.example.com/x'"),
    ],
)
def test_templated_extras_are_checked_at_execute_before_any_call(current_emulator, kwargs, message):
    # A string may be a template, so it is checked once rendered: still before any call to Opus.
    with pytest.raises(OpusInvalidArgumentError, match=message):
        execute_op(**kwargs).execute(make_context())
    assert current_emulator.requests() == []


def test_initiate_extras_are_sent_when_set(current_emulator):
    execute_op(source="scheduled", ref_user_id="user-7", workspaces=["ws-1", "ws-2"]).execute(make_context())
    (job,) = current_emulator.jobs()
    assert job["source"] == "scheduled" and job["status"] == "COMPLETED"
