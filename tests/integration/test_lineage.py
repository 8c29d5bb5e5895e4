"""
OpenLineage from the provider's tasks, against the emulator.

With ``apache-airflow-providers-openlineage`` installed (the ``openlineage`` extra; `make test`'s venv),
real DAGs run with ``dag.test()`` in a child process whose OpenLineage listener writes its events to a
file, and the events are checked. The child process is needed because the OpenLineage provider reads
its configuration once per process (``functools.cache``) and Airflow registers its listener once per
process, when the plugins load: an in-process run would depend on which test loaded them first.

Where the OpenLineage provider is not installed (the older-Airflow venvs and `make test-min-deps`),
those tests are skipped, and the first test still proves the tasks work and import nothing of
OpenLineage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.lineage import LineageFacts, file_dataset_name, workflow_dataset_name
from airflow_provider_opus.sensors.opus import OpusJobSensor
from tests.integration.helpers import execute_op
from tests.support.task_context import VALID_INPUTS, make_context

if TYPE_CHECKING:
    from airflow_provider_opus.emulator import OpusEmulator

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "example_dags" / "data"
INVOICE = DATA / "invoice-1001.pdf"
NOTE = DATA / "delivery-note-1001.csv"
#: How long the events may take to appear once the DAG runs ended (they are written before each task ends).
EVENTS_DEADLINE = 60.0

LINEAGE_DAGS = textwrap.dedent(
    f'''
    """DAGs for tests/integration/test_lineage.py: no description, so the workflow documents the job."""
    import datetime as dt
    import os

    from airflow.sdk import DAG

    from airflow_provider_opus.operators.opus import (
        OpusExecuteJobOperator,
        OpusGetJobResultsOperator,
        OpusUploadOperator,
    )
    from airflow_provider_opus.sensors.opus import OpusJobSensor

    INPUTS = {{"Customer Name": "ACME GmbH", "Threshold": 0.8, "Due Date": "2026-12-01"}}

    with DAG("opus_lineage", schedule=None, start_date=dt.datetime(2026, 1, 1)):
        upload = OpusUploadOperator(task_id="upload", files=[{str(NOTE)!r}])
        # The invoice is a local path: the execute task uploads it itself. It waits in the triggerer.
        run = OpusExecuteJobOperator(
            task_id="run",
            workflow_id={DEFAULT_WORKFLOW_ID!r},
            inputs={{**INPUTS, "Invoice": {str(INVOICE)!r}, "Supporting Documents": upload.output}},
            deferrable=True,
            poll_interval=0.1,
        )
        # Deferred: its lineage comes from execute_complete, in the resumed task.
        wait = OpusJobSensor(task_id="wait", job_execution_id=run.output, poke_interval=0.1, deferrable=True)
        results = OpusGetJobResultsOperator(
            task_id="results", job_execution_id=run.output, workflow_id={DEFAULT_WORKFLOW_ID!r}
        )
        run >> wait >> results

    with DAG("opus_lineage_failure", schedule=None, start_date=dt.datetime(2026, 1, 1)):
        # A fileUrl on the storage that was never uploaded: the job FAILS, and says so in its audit trail.
        # This one waits in the worker.
        never_uploaded = os.environ["OPUS_STORAGE_URL"] + "/media/private/uploaded/never-uploaded.pdf"
        OpusExecuteJobOperator(
            task_id="run",
            workflow_id={DEFAULT_WORKFLOW_ID!r},
            inputs={{**INPUTS, "Invoice": never_uploaded}},
            poll_interval=0.1,
        )
    '''
)

RUN_DAGS = textwrap.dedent(
    """
    import json, sys
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    assert not bag.import_errors, bag.import_errors
    states = {dag_id: str(bag.dags[dag_id].test().state) for dag_id in ("opus_lineage", "opus_lineage_failure")}
    print("STATES " + json.dumps(states))
    """
)

#: Runs the tasks with OpenLineage unimportable, as when it is not installed, and lists what got imported.
#: Airflow's provider discovery still reads the metadata of every installed provider (the package and its
#: get_provider_info module): only those two may load, and only where the provider is installed.
PROVIDER_METADATA = {"airflow.providers.openlineage", "airflow.providers.openlineage.get_provider_info"}
WITHOUT_OPENLINEAGE = textwrap.dedent(
    f"""
    import importlib.abc, json, sys

    METADATA = {sorted(PROVIDER_METADATA)!r}

    def is_openlineage(name):
        return name.split(".")[0] == "openlineage" or name.startswith("airflow.providers.openlineage")

    class NoOpenLineage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if is_openlineage(name) and name not in METADATA:
                raise ImportError(f"{{name}} is not installed (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoOpenLineage())

    from airflow_provider_opus.operators.opus import (
        OpusExecuteJobOperator, OpusGetJobResultsOperator, OpusUploadOperator,
    )
    from airflow_provider_opus.sensors.opus import OpusJobSensor
    from tests.support.task_context import VALID_INPUTS, make_context

    invoice, workflow_id = sys.argv[1], sys.argv[2]
    file_url = OpusUploadOperator(task_id="upload", files=invoice).execute(make_context())
    job = OpusExecuteJobOperator(
        task_id="run", workflow_id=workflow_id, inputs={{**VALID_INPUTS, "Invoice": file_url}}, poll_interval=0.05
    ).execute(make_context())
    OpusJobSensor(task_id="wait", job_execution_id=job, poke_interval=0.05).execute(make_context())
    results = OpusGetJobResultsOperator(task_id="results", job_execution_id=job).execute(make_context())
    imported = sorted(name for name in sys.modules if is_openlineage(name))
    print("RESULT " + json.dumps({{"status": results["status"], "imported": imported}}))
    """
)


def child_env(**extra: str) -> dict[str, str]:
    """The test process's environment (its AIRFLOW_HOME, the emulator connection), for a child process."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def last_line(output: str, prefix: str) -> Any:
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert lines, output[-4000:]
    return json.loads(lines[-1][len(prefix) :])


def test_the_tasks_run_and_import_nothing_of_openlineage_when_it_is_missing(emulator: OpusEmulator) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENLINEAGE, str(INVOICE), DEFAULT_WORKFLOW_ID],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = last_line(done.stdout, "RESULT ")
    assert result["status"] == "COMPLETED"
    assert set(result["imported"]) <= PROVIDER_METADATA, result["imported"]
    assert len(emulator.jobs()) == 1


# -- with the OpenLineage provider --------------------------------------------------------------------


@pytest.fixture(scope="module")
def lineage_runs(_emulator_server: OpusEmulator, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Both DAGs run once with dag.test() in a child process; the events its listener wrote, and the jobs."""
    pytest.importorskip("airflow.providers.openlineage")
    emulator = _emulator_server
    emulator.reset()
    emulator.configure(job_duration=0.3, job_duration_jitter=0.0)
    folder = tmp_path_factory.mktemp("lineage-dags")
    (folder / "lineage_dags.py").write_text(LINEAGE_DAGS)
    events_file = folder / "openlineage.jsonl"
    env = child_env(
        AIRFLOW_CONN_OPUS_DEFAULT=emulator.connection_json(),
        AIRFLOW__CORE__DAGS_FOLDER=str(folder),
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "file", "log_file_path": str(events_file), "append": True}),
        OPUS_STORAGE_URL=emulator.storage_url,
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=240
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    done = subprocess.run(
        [sys.executable, "-c", RUN_DAGS, str(folder)], env=env, capture_output=True, text=True, timeout=280, cwd=REPO
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert last_line(done.stdout, "STATES ") == {"opus_lineage": "success", "opus_lineage_failure": "failed"}
    expected = {
        ("COMPLETE", "opus_lineage.upload"),
        ("COMPLETE", "opus_lineage.run"),
        ("COMPLETE", "opus_lineage.wait"),
        ("COMPLETE", "opus_lineage.results"),
        ("FAIL", "opus_lineage_failure.run"),
    }
    events = wait_for_events(events_file, expected)
    jobs = emulator.jobs()
    emulator.reset()
    return SimpleNamespace(events=events, jobs=jobs, api_url=emulator.url, storage_url=emulator.storage_url)


def wait_for_events(path: Path, expected: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The last event of each (eventType, job name) in the file, once all expected ones are there."""
    deadline = time.monotonic() + EVENTS_DEADLINE
    while True:
        events: dict[tuple[str, str], dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    event = json.loads(line)
                    events[(event["eventType"], event["job"]["name"])] = event
        if expected <= set(events) or time.monotonic() > deadline:
            assert expected <= set(events), f"missing events: {sorted(expected - set(events))}"
            return events
        time.sleep(0.1)


def datasets(event: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    return [(dataset["namespace"], dataset["name"]) for dataset in event.get(kind, [])]


def job_of(runs: SimpleNamespace, status: str) -> dict[str, Any]:
    (job,) = [job for job in runs.jobs if job["status"] == status]
    return job


def sent(job: dict[str, Any], display_name: str) -> Any:
    (value,) = [
        item["value"] for item in job["jobPayloadSchemaInstance"].values() if item["displayName"] == display_name
    ]
    return value


def output_file(runs: SimpleNamespace, job_id: str) -> tuple[str, str]:
    return file_dataset_name(f"{runs.storage_url}/media/private/generated/output_{job_id}.pdf")


def test_the_upload_reads_local_files_and_produces_file_urls(lineage_runs: SimpleNamespace) -> None:
    event = lineage_runs.events[("COMPLETE", "opus_lineage.upload")]
    (note_url,) = sent(job_of(lineage_runs, "COMPLETED"), "Supporting Documents")
    assert datasets(event, "inputs") == [("file", str(NOTE))]
    assert datasets(event, "outputs") == [file_dataset_name(note_url)]
    assert note_url.startswith(lineage_runs.storage_url + "/")


def test_the_job_reads_the_workflow_and_files_and_produces_its_output_files(lineage_runs: SimpleNamespace) -> None:
    job = job_of(lineage_runs, "COMPLETED")
    job_id = job["jobExecutionId"]
    event = lineage_runs.events[("COMPLETE", "opus_lineage.run")]

    invoice_url = sent(job, "Invoice")
    (note_url,) = sent(job, "Supporting Documents")
    assert datasets(event, "inputs") == [
        workflow_dataset_name(lineage_runs.api_url, DEFAULT_WORKFLOW_ID),
        ("file", str(INVOICE)),  # uploaded by the task: the local file and the fileUrl it became
        file_dataset_name(invoice_url),
        file_dataset_name(note_url),  # the upload task's output
    ]
    assert datasets(event, "inputs")[0][0] == "opus://" + lineage_runs.api_url.split("://", 1)[1]
    assert datasets(event, "outputs") == [output_file(lineage_runs, job_id)]

    facets = event["run"]["facets"]
    assert facets["externalQuery"]["externalQueryId"] == job_id and facets["externalQuery"]["source"] == "opus"
    assert facets["opus_job"]["jobExecutionId"] == job_id
    assert facets["opus_job"]["workflowId"] == DEFAULT_WORKFLOW_ID
    assert facets["opus_job"]["workflowName"] == "Invoice Review"
    assert facets["opus_job"]["status"] == "COMPLETED"
    assert "errorMessage" not in facets
    documentation = event["job"]["facets"]["documentation"]["description"]
    assert documentation.startswith("Invoice Review: Validates a supplier invoice")


@pytest.mark.parametrize("task_id", ["wait", "results"])
def test_the_sensor_and_results_tasks_produce_the_jobs_output_files(
    lineage_runs: SimpleNamespace, task_id: str
) -> None:
    job_id = job_of(lineage_runs, "COMPLETED")["jobExecutionId"]
    event = lineage_runs.events[("COMPLETE", f"opus_lineage.{task_id}")]
    assert datasets(event, "outputs") == [output_file(lineage_runs, job_id)]
    facets = event["run"]["facets"]
    assert facets["externalQuery"]["externalQueryId"] == job_id
    assert facets["opus_job"]["jobExecutionId"] == job_id
    if task_id == "results":  # given the workflow_id: the workflow is read, and reported
        assert datasets(event, "inputs") == [workflow_dataset_name(lineage_runs.api_url, DEFAULT_WORKFLOW_ID)]
        assert facets["opus_job"]["workflowName"] == "Invoice Review"
        assert event["job"]["facets"]["documentation"]["description"].startswith("Invoice Review: ")
    else:  # the sensor knows only the job
        assert datasets(event, "inputs") == []
        assert "workflowId" not in facets["opus_job"] and "documentation" not in event["job"]["facets"]


def test_a_failed_job_emits_a_fail_event_with_its_audit_tail(lineage_runs: SimpleNamespace) -> None:
    job = job_of(lineage_runs, "FAILED")
    event = lineage_runs.events[("FAIL", "opus_lineage_failure.run")]
    never_uploaded = f"{lineage_runs.storage_url}/media/private/uploaded/never-uploaded.pdf"

    assert datasets(event, "inputs") == [
        workflow_dataset_name(lineage_runs.api_url, DEFAULT_WORKFLOW_ID),
        file_dataset_name(never_uploaded),
    ]
    assert datasets(event, "outputs") == []
    facets = event["run"]["facets"]
    reason = f"Job failed: file {never_uploaded} (workflow_input_h69vx5i4a) was never uploaded"
    assert reason in facets["errorMessage"]["message"]
    assert job["jobExecutionId"] in facets["errorMessage"]["message"]
    assert facets["opus_job"]["status"] == "FAILED"
    assert facets["opus_job"]["jobExecutionId"] == job["jobExecutionId"]
    assert reason in [entry["action"] for entry in facets["opus_job"]["auditTail"]]


# -- the facts, without a DAG run --------------------------------------------------------------------


def test_the_facts_recorded_before_a_deferral_come_back_in_execute_complete(emulator: OpusEmulator) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    emulator.configure(job_duration=30)
    kwargs = {"inputs": {**VALID_INPUTS, "Invoice": str(INVOICE)}, "deferrable": True}
    with pytest.raises(TaskDeferred) as info:
        execute_op(**kwargs).execute(make_context())
    (job,) = emulator.jobs()
    emulator.set_job_status(job["jobExecutionId"], "COMPLETED")
    event = {"status": "success", "job_execution_id": job["jobExecutionId"], "opus_status": "COMPLETED"}

    # The task resumes as a new object, with the trigger's event and the kwargs it deferred with.
    resumed = execute_op(**kwargs)
    next_kwargs = json.loads(json.dumps(info.value.kwargs))  # stored as JSON in between
    assert resumed.execute_complete(make_context(), event=event, **next_kwargs) == job["jobExecutionId"]

    facts = resumed.lineage_facts
    assert (facts.job_execution_id, facts.job_completed, facts.job_status) == (job["jobExecutionId"], True, "COMPLETED")
    assert (facts.workflow_id, facts.workflow_name) == (DEFAULT_WORKFLOW_ID, "Invoice Review")
    assert facts.input_files == [str(INVOICE), sent(job, "Invoice")]


def test_lineage_reads_only_what_it_lacks_and_logs_what_it_cannot_read(
    emulator: OpusEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    emulator.set_job_status(job_id, "COMPLETED")
    waiting = OpusJobSensor(task_id="wait", job_execution_id=job_id, poke_interval=0.05)  # the task retries 3 times
    waiting.execute(make_context())
    reads = len(emulator.requests("get_job_results"))

    emulator.inject("get_job_results", {"status": 500})
    lineage = waiting.get_openlineage_facets_on_complete(None)

    # Tried once, not retried (the listener's time is short). The task's own lineage is still there;
    # the output files could not be read, and the log says so.
    assert lineage.run_facets["externalQuery"].externalQueryId == job_id
    assert lineage.outputs == []
    assert f"could not read the output files of Opus job {job_id}" in caplog.text
    assert len(emulator.requests("get_job_results")) == reads + 1

    # Read once it can be; then kept, not read again.
    lineage = waiting.get_openlineage_facets_on_complete(None)
    assert [dataset.name for dataset in lineage.outputs] == [f"/media/private/generated/output_{job_id}.pdf"]
    waiting.get_openlineage_facets_on_complete(None)
    assert len(emulator.requests("get_job_results")) == reads + 2


def test_the_workflow_details_execute_read_are_not_read_again(emulator: OpusEmulator) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    run = execute_op()
    run.execute(make_context())
    assert len(emulator.requests("get_workflow")) == 1

    lineage = run.get_openlineage_facets_on_complete(None)

    assert len(emulator.requests("get_workflow")) == 1  # the execute call's details were kept
    assert lineage.job_facets["documentation"].description.startswith("Invoice Review: ")
    assert isinstance(run.lineage_facts, LineageFacts) and run.lineage_facts.job_completed


def test_a_task_resumed_without_facts_reads_them_and_one_failed_read_spares_the_others(
    emulator: OpusEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    emulator.set_job_status(job_id, "COMPLETED")
    event = {"status": "success", "job_execution_id": job_id, "opus_status": "COMPLETED"}
    # Deferred by a provider version without lineage: no lineage kwargs come back.
    resumed = execute_op(deferrable=True)
    resumed.execute_complete(make_context(), event=event, limit="timeout")
    reads = len(emulator.requests("get_workflow"))

    emulator.inject("get_workflow", {"status": 500})
    lineage = resumed.get_openlineage_facets_on_complete(None)

    assert f"could not read Opus workflow {DEFAULT_WORKFLOW_ID}" in caplog.text
    assert len(emulator.requests("get_workflow")) == reads + 1
    assert [dataset.name for dataset in lineage.inputs] == [f"workflows/{DEFAULT_WORKFLOW_ID}"]
    assert [dataset.name for dataset in lineage.outputs] == [f"/media/private/generated/output_{job_id}.pdf"]
    assert lineage.run_facets["opus_job"].workflowId == DEFAULT_WORKFLOW_ID
    assert "documentation" not in lineage.job_facets
