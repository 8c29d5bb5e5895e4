"""operators/results.py: OpusGetJobResultsOperator against the emulator, over real loopback HTTP."""

from __future__ import annotations

import json
import os

import pytest
from airflow.sdk import Asset, ObjectStoragePath

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.emulator.output_files import expected_output_file
from airflow_provider_opus.exceptions import OpusError, OpusInvalidArgumentError, OpusJobFailedError, OpusResponseError
from airflow_provider_opus.operators.opus import OpusGetJobResultsOperator
from airflow_provider_opus.outputs import output_value
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import execute_op
from tests.support.task_context import make_context

pytestmark = pytest.mark.integration


def completed_job() -> str:
    return execute_op().execute(make_context())


def test_results_operator_returns_results_and_audit(emulator):
    job_id = completed_job()
    context = make_context()
    op = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, workflow_id=DEFAULT_WORKFLOW_ID)
    out = op.execute(context)
    assert out["job_execution_id"] == job_id and out["status"] == "COMPLETED"
    assert out["results_shape"] == "results"
    assert out["results"]["data"]["verdict"] == "PASS"  # the raw results, as Opus sent them
    assert out["outputs"]["Verdict"] == "PASS" and out["output_names"]["verdict"] == "Verdict"
    assert out["output_files"] == out["results"]["outputFiles"]
    assert out["audit_trail"][-1]["action"] == "Job completed successfully"
    assert json.loads(json.dumps(out)) == out  # plain JSON for XCom
    # Each output is an XCom of its own, keyed by display name.
    assert context["ti"].xcom["Verdict"] == "PASS"
    # Without the workflow, outputs the results name by variable only keep that name.
    lean = OpusGetJobResultsOperator(task_id="r2", job_execution_id=job_id, include_audit_log=False, push_outputs=False)
    lean_context = make_context()
    lean_out = lean.execute(lean_context)
    assert lean_out["audit_trail"] == [] and lean_out["outputs"]["verdict"] == "PASS"
    assert "verdict" not in lean_context["ti"].xcom


def test_both_results_shapes_give_the_same_outputs_and_files(emulator):
    job_id = completed_job()
    op = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, workflow_id=DEFAULT_WORKFLOW_ID)
    example = op.execute(make_context())
    emulator.set_results_shape(DEFAULT_WORKFLOW_ID, "schema")
    schema = op.execute(make_context())
    assert schema["results_shape"] == "schema" and "jobResultsPayloadSchema" not in example["results"]
    assert schema["results"] != example["results"]
    assert schema["outputs"] == example["outputs"]
    assert schema["output_files"] == example["output_files"] != []
    assert output_value(schema, "Verdict") == output_value(schema, "verdict") == "PASS"


def test_outputs_named_by_variable_only_warn_and_name_workflow_id(emulator, capsys):
    # The older results shape names outputs by variable; without workflow_id nothing gives their display
    # names, and a downstream results.output["Verdict"] failed with Airflow's bare XComNotFound.
    job_id = completed_job()
    capsys.readouterr()
    out = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())
    assert out["outputs"]["verdict"] == "PASS" and "Verdict" not in out["outputs"]
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "by variable name only" in line]
    assert "warning" in line and job_id in line and "'verdict'" in line
    assert "Give this task workflow_id=" in line and 'results.output["<display name>"]' in line
    # With workflow_id, or with results that carry display names themselves, there is nothing to warn about.
    OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, workflow_id=DEFAULT_WORKFLOW_ID).execute(
        make_context()
    )
    emulator.set_results_shape(DEFAULT_WORKFLOW_ID, "schema")
    named = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())
    assert named["outputs"]["Verdict"] == "PASS"
    assert "by variable name only" not in capsys.readouterr().out


def test_results_operator_refuses_unfinished_and_failed_jobs(emulator):
    emulator.configure(job_duration=30)
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    with pytest.raises(OpusError, match="still IN PROGRESS: wait for it first"):
        OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())
    emulator.set_job_status(job_id, "FAILED")
    with pytest.raises(OpusJobFailedError):
        OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id).execute(make_context())


@pytest.mark.parametrize(
    ("results", "field"),
    [
        (["a"], "results is list"),
        ("done", "results is 'done', expected an object"),
        ({"outputFiles": "https://f/out.pdf"}, "results.outputFiles is 'https://f/out.pdf', expected a list"),
        (None, "neither results nor jobResultsPayloadSchema"),
    ],
)
def test_results_of_the_wrong_shape_name_the_field(emulator, results, field):
    body = {"jobExecutionId": "J", "status": "COMPLETED", "results": results}
    emulator.inject("get_job_results", {"status": 200, "json": body, "times": 2})
    with pytest.raises(OpusResponseError, match="GET /job/J/results") as info:
        OpusGetJobResultsOperator(task_id="r", job_execution_id="J").execute(make_context())
    assert field in str(info.value)
    asset = Asset("opus://invoice-review")
    event = {"status": "success", "job_execution_id": "J", "opus_status": "COMPLETED", "message": "done"}
    with pytest.raises(OpusResponseError, match="GET /job/J/results") as info:
        execute_op(outlets=[asset]).execute_complete(make_context(), event)  # the asset extras
    assert field in str(info.value)


@pytest.mark.parametrize("as_object_storage", [False, True])
def test_output_files_are_downloaded_to_a_folder(emulator, tmp_path, as_object_storage):
    job_id = completed_job()
    folder = ObjectStoragePath(f"file://{tmp_path}/out") if as_object_storage else str(tmp_path / "out")
    out = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, download_to=folder).execute(make_context())
    written = out["downloaded_files"]
    assert len(written) == len(out["output_files"]) >= 1
    for index, path in enumerate(written, start=1):
        local = path.removeprefix("file://")
        assert os.path.basename(local) == out["output_files"][index - 1].rsplit("/", 1)[1]
        with open(local, "rb") as stream:
            assert stream.read() == expected_output_file(job_id, index)
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.path.basename(p) for p in written)
    downloads = emulator.requests("download_output_file")
    assert downloads and not any(r["had_service_key"] for r in downloads)  # storage is not the API host


def test_a_destination_that_cannot_be_written_fails_before_any_call(emulator, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    op = OpusGetJobResultsOperator(task_id="r", job_execution_id="J", download_to=str(blocker / "out"))
    with pytest.raises(OpusInvalidArgumentError, match=r"download_to .* cannot be written"):
        op.execute(make_context())
    assert emulator.requests() == []


def test_the_key_reaches_the_file_host_only_when_the_connection_lists_it(emulator, monkeypatch, tmp_path):
    emulator.configure_file_serving(require_key=True)
    job_id = completed_job()
    op = OpusGetJobResultsOperator(task_id="r", job_execution_id=job_id, download_to=str(tmp_path))
    with pytest.raises(OpusError, match="add this host to file_hosts"):
        op.execute(make_context())
    conn = {
        "conn_type": "opus",
        "host": emulator.url,
        "password": SERVICE_KEY,
        "extra": {"file_hosts": emulator.storage_url},
    }
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    out = OpusGetJobResultsOperator(task_id="r2", job_execution_id=job_id, download_to=str(tmp_path)).execute(
        make_context()
    )
    assert [r["had_service_key"] for r in emulator.requests("download_output_file")] == [False, True]
    with open(out["downloaded_files"][0], "rb") as stream:
        assert stream.read() == expected_output_file(job_id)
