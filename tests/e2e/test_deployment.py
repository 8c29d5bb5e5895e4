"""
End to end on a real Airflow deployment, as ``make demo`` runs it: no dag.test().

One deployment (api-server, scheduler, dag-processor, triggerer; SQLite, LocalExecutor) in a temp
folder, with the emulator as a separate process. It runs ``opus_document_review`` and the asset
chain (``opus_asset_chain_producer``, whose asset event schedules ``opus_asset_chain_consumer``),
then stops everything. The tests check what happened from the outside: run states, XComs over the
REST API, trigger log files, the service key in no file, no process left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_opus.compat import AIRFLOW_VERSION, HAS_TASK_STATE_STORE
from airflow_provider_opus.get_provider_info import get_provider_info
from tests.conftest import SERVICE_KEY
from tests.support.deployment import AirflowDeployment, all_files, files_containing
from tests.support.emulator_process import EmulatorProcess

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psutil

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
REVIEW = "opus_document_review"
PRODUCER = "opus_asset_chain_producer"
CONSUMER = "opus_asset_chain_consumer"
# Long enough that the sensor surely finds the job running and defers, and that the scheduler has seen
# the deferral end before the trigger fires (see AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL in the deployment).
JOB_SECONDS = 8.0


@dataclass
class Outcome:
    """What the deployment did, collected before it was stopped."""

    root: Path
    emulator_url: str = ""
    jobs: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_instances: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    xcoms: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    deferred_links: dict[str, Any] = field(default_factory=dict)
    connection_form: dict[str, Any] = field(default_factory=dict)
    api_logs: dict[tuple[str, str], str] = field(default_factory=dict)
    argv: list[list[str]] = field(default_factory=list)
    seen: list[psutil.Process] = field(default_factory=list)
    leftovers: list[psutil.Process] = field(default_factory=list)
    pid_files_left: list[Path] = field(default_factory=list)
    task_log_dir: Path = Path()


@pytest.fixture(scope="module", params=["legacy", "current"])
def outcome(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """One real deployment running the example DAGs, against each API generation of the emulator in turn."""
    root = tmp_path_factory.mktemp(f"e2e-deployment-{request.param}")
    result = Outcome(root=root)
    emulator = EmulatorProcess(root, SERVICE_KEY, job_duration=JOB_SECONDS, api=request.param)
    airflow: AirflowDeployment | None = None
    try:
        emulator.start()
        result.emulator_url = emulator.url
        airflow = AirflowDeployment(
            root,
            EXAMPLE_DAGS,
            env={"AIRFLOW_CONN_OPUS_DEFAULT": emulator.connection_json(), "OPUS_POLL_INTERVAL": "0.5"},
        )
        result.task_log_dir = airflow.task_log_dir
        airflow.start()
        airflow.wait_for_dag(CONSUMER)
        airflow.unpause(CONSUMER)
        run_ids = {dag_id: airflow.trigger(dag_id) for dag_id in (REVIEW, PRODUCER)}
        for dag_id, run_id in run_ids.items():
            result.runs[dag_id] = airflow.wait_for_run(dag_id, run_id, timeout=120, poll=0.5)
        run_ids[CONSUMER] = airflow.wait_for_new_run(CONSUMER, timeout=60)
        result.runs[CONSUMER] = airflow.wait_for_run(CONSUMER, run_ids[CONSUMER], timeout=60, poll=0.5)

        for dag_id, run_id in run_ids.items():
            tis = airflow.task_instances(dag_id, run_id)
            result.task_instances[dag_id] = {ti["task_id"]: ti for ti in tis}
            for ti in tis:
                result.xcoms[(dag_id, ti["task_id"], "return_value")] = airflow.xcom(
                    dag_id, run_id, ti["task_id"], default=None
                )
                result.api_logs[(dag_id, ti["task_id"])] = airflow.task_log(
                    dag_id, run_id, ti["task_id"], int(ti["try_number"])
                )
        result.xcoms[(REVIEW, "start_review", "job_execution_id")] = airflow.xcom(
            REVIEW, run_ids[REVIEW], "start_review", key="job_execution_id"
        )
        links_path = f"/dags/{REVIEW}/dagRuns/{run_ids[REVIEW]}/taskInstances/start_review/links"
        result.links = airflow.api("GET", links_path)["extra_links"]
        # A deferrable task: its link was stored before the deferral and read back when it resumed.
        links_path = f"/dags/{PRODUCER}/dagRuns/{run_ids[PRODUCER]}/taskInstances/review_invoice/links"
        result.deferred_links = airflow.api("GET", links_path)["extra_links"]
        result.connection_form = airflow.connection_form("opus")
        result.jobs = emulator.jobs()
    finally:
        procs = [emulator.process]
        if airflow is not None:
            airflow.stop()
            procs = [*airflow.processes.values(), emulator.process]
        emulator.stop()
        result.argv = [proc.argv for proc in procs]
        result.seen = [p for proc in procs for p in proc.seen.values()]
        result.leftovers = [p for proc in procs for p in proc.leftovers()]
        result.pid_files_left = sorted((root / "pids").glob("*.pid"))
    yield result


def job_of(outcome: Outcome, dag_id: str) -> dict[str, Any]:
    (job,) = (job for job in outcome.jobs if job["title"].startswith(f"{dag_id}."))
    return job


def test_runs_succeed(outcome: Outcome) -> None:
    for dag_id in (REVIEW, PRODUCER, CONSUMER):
        states = {task_id: ti["state"] for task_id, ti in outcome.task_instances[dag_id].items()}
        assert outcome.runs[dag_id]["state"] == "success", (dag_id, states)
    assert outcome.runs[CONSUMER]["run_type"] == "asset_triggered"
    assert [job["status"] for job in outcome.jobs] == ["COMPLETED", "COMPLETED"]


@pytest.mark.parametrize(("dag_id", "task_id"), [(REVIEW, "wait_for_review"), (PRODUCER, "review_invoice")])
def test_deferrable_tasks_deferred_and_the_triggerer_resumed_them(outcome: Outcome, dag_id: str, task_id: str) -> None:
    ti = outcome.task_instances[dag_id][task_id]
    assert ti["state"] == "success" and ti["try_number"] == 1
    job_id = job_of(outcome, dag_id)["jobExecutionId"]
    run_dir = outcome.task_log_dir / f"dag_id={dag_id}" / f"run_id={outcome.runs[dag_id]['dag_run_id']}"
    # The triggerer writes a trigger's log beside the task's: attempt=1.log.trigger.<id>.log.
    trigger_logs = sorted((run_dir / f"task_id={task_id}").glob("attempt=1.log.trigger.*.log"))
    assert len(trigger_logs) == 1, sorted((run_dir / f"task_id={task_id}").iterdir())
    trigger_log = trigger_logs[0].read_text()
    assert f"Opus job {job_id} is IN PROGRESS" in trigger_log
    assert f"Opus job {job_id} is COMPLETED" in trigger_log
    assert "Trigger fired event" in trigger_log
    task_log = (run_dir / f"task_id={task_id}" / "attempt=1.log").read_text()
    assert "Pausing task as DEFERRED" in task_log  # the first half, in a worker
    assert f"Opus job {job_id} COMPLETED after" in task_log  # execute_complete, after the trigger fired
    assert f"Opus job {job_id} is COMPLETED" in outcome.api_logs[(dag_id, task_id)]  # the UI shows the trigger log


def test_xcoms_carry_the_job_and_its_results(outcome: Outcome) -> None:
    job = job_of(outcome, REVIEW)
    job_id = job["jobExecutionId"]
    assert outcome.xcoms[(REVIEW, "start_review", "return_value")] == job_id
    assert outcome.xcoms[(REVIEW, "start_review", "job_execution_id")] == job_id
    results = outcome.xcoms[(REVIEW, "get_results", "return_value")]
    assert results["job_execution_id"] == job_id and results["status"] == "COMPLETED"
    outputs = results["outputs"]  # by display name in either generation's results
    assert {name: outputs[name] for name in ("Summary", "Score", "Verdict", "Reviewer Comments")} == {
        "Summary": "Job executed successfully.",
        "Score": 92,
        "Verdict": "PASS",
        "Reviewer Comments": "All documents validated successfully.",
    }
    (output,) = results["output_files"]
    assert output.endswith(f"/media/private/generated/output_{job_id}.pdf")
    audit = results["audit_trail"]  # as Opus sent it: the older trail, or today's node-level object
    if isinstance(audit, list):
        assert audit[-1]["action"] == "Job completed successfully"
    else:
        assert audit["failed_nodes"] == [] and audit["nb_executed_nodes"] == audit["nb_nodes"] > 0
    decision = outcome.xcoms[(REVIEW, "decide", "return_value")]
    assert decision == {
        "job_execution_id": job_id,
        "verdict": "PASS",
        "score": 92.0,
        "approved": True,
        "comments": "All documents validated successfully.",
        "output_files": [output],
    }
    invoice, supporting = (
        outcome.xcoms[(REVIEW, "upload_invoice", "return_value")],
        outcome.xcoms[(REVIEW, "upload_supporting_documents", "return_value")],
    )
    sent = {item["displayName"]: item["value"] for item in job["jobPayloadSchemaInstance"].values()}
    assert sent["Invoice"] == invoice and sent["Supporting Documents"] == supporting and len(supporting) == 2


def test_the_workflow_link_is_served(outcome: Outcome) -> None:
    # The emulator's connection points app_url at the emulator, which serves the workflow's page.
    assert outcome.links == {"Opus workflow": f"{outcome.emulator_url}/app/workflow/B9uGJfZ3CFwOdMKH"}
    assert outcome.deferred_links == outcome.links


def test_the_ui_shows_the_connection_form_of_the_provider_info(outcome: Outcome) -> None:
    # Airflow 3.2+ reads the provider info itself; 3.1 calls OpusHook's form methods, built from it.
    info = get_provider_info()["connection-types"][0]
    behaviour, fields = info["ui-field-behaviour"], info["conn-fields"]
    form = outcome.connection_form
    assert form["hook_class_name"] == info["hook-class-name"] and form["hook_name"] == info["hook-name"]
    standard = form["standard_fields"]
    hidden = {name for name, spec in standard.items() if spec and spec["hidden"]}
    assert hidden == {"login", "url_schema", "port"}  # "schema" is url_schema in the form; "extra" is never shown
    for name, label in behaviour["relabeling"].items():
        assert standard[name] == {"hidden": False, "title": label, "placeholder": behaviour["placeholders"][name]}
    extra = form["extra_fields"]
    assert set(extra) == set(fields)
    for name, spec in fields.items():
        assert extra[name]["schema"]["title"] == spec["label"]
        assert extra[name]["description"] == spec["description"]
        assert "null" in extra[name]["schema"]["type"]  # optional
        # What the form shows before anyone types: "Verify TLS certificates" on, as the hook reads it.
        assert extra[name]["value"] == spec["schema"].get("default"), name
    assert extra["verify_tls"]["value"] is True


def test_the_task_log_says_once_when_a_retry_cannot_reattach(outcome: Outcome) -> None:
    log = outcome.api_logs[(REVIEW, "start_review")]
    line = "has no task state store: a retry of this task starts a new Opus job (reattaching to a running job needs"
    if HAS_TASK_STATE_STORE:  # Airflow 3.3+: a retry reattaches, and nothing is said
        assert line not in log
    else:
        assert log.count(f"Airflow {AIRFLOW_VERSION} {line} Airflow 3.3+)") == 1, log


def test_the_asset_event_hands_the_job_to_the_consumer(outcome: Outcome) -> None:
    job_id = job_of(outcome, PRODUCER)["jobExecutionId"]
    archived = outcome.xcoms[(CONSUMER, "archive_outputs", "return_value")]
    assert len(archived) == 1
    assert archived[0]["job_execution_id"] == job_id
    assert archived[0]["verdict"] == "PASS"
    assert archived[0]["source_run_id"] == outcome.runs[PRODUCER]["dag_run_id"]
    (output,) = archived[0]["output_files"]
    assert output.endswith(f"/media/private/generated/output_{job_id}.pdf")


def test_the_service_key_is_in_no_log_no_output_and_no_command_line(outcome: Outcome) -> None:
    files = all_files(outcome.root)
    names = {path.name for path in files}
    # The check means something only if the logs it searches are there.
    assert {"api-server.log", "scheduler.log", "dag-processor.log", "triggerer.log", "opus-emulator.log"} <= names
    assert any(".log.trigger." in name for name in names)
    assert len([path for path in files if path.name == "attempt=1.log"]) == 8  # 6 + 1 + 1 tasks
    assert files_containing(files, SERVICE_KEY) == []
    assert not [key for key, text in outcome.api_logs.items() if SERVICE_KEY in text]
    assert not [argv for argv in outcome.argv if SERVICE_KEY in " ".join(argv)]


def test_every_process_started_was_stopped(outcome: Outcome) -> None:
    assert len(outcome.seen) >= 5  # four components and the emulator, plus the children seen
    assert outcome.leftovers == []
    assert outcome.pid_files_left == []
