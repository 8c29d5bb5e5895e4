"""
The example DAGs: each parses with no network and no Variable access, and runs with dag.test() against the emulator.

dag.test() needs a migrated metadata database and the DAG files inside the DAGs folder, so this
module migrates the test AIRFLOW_HOME's database once and points the DAGs folder at example_dags/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_opus.emulator.output_files import expected_output_file

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun

    from airflow_provider_opus.emulator import OpusEmulator

pytestmark = pytest.mark.integration

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DATA = EXAMPLE_DAGS / "data"
EXAMPLE_DAG_IDS = {
    "opus_document_review",
    "opus_scheduled_report",
    "opus_batch_fanout",
    "opus_asset_chain_producer",
    "opus_asset_chain_consumer",
}


@pytest.fixture
def emulator(either_emulator: OpusEmulator) -> OpusEmulator:
    """Each example runs against both API generations: the older reference's and today's strict one."""
    return either_emulator


def _forbidden(what: str) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{what} while parsing the example DAGs")

    return fail


@pytest.fixture(scope="module")
def dagbag() -> Iterator[DagBag]:
    """The example DAGs, parsed with sockets, Variables and connections out of reach; a migrated database."""
    from airflow import settings
    from airflow.sdk import BaseHook, Variable

    DagBag = dag_bag_class()

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(EXAMPLE_DAGS))
        mp.setattr(settings, "DAGS_FOLDER", str(EXAMPLE_DAGS))
        mp.setenv("OPUS_POLL_INTERVAL", "0.1")  # read when a DAG file is parsed; the examples default to 30 s
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=os.environ, capture_output=True, text=True
        )
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

        with pytest.MonkeyPatch.context() as parsing:
            parsing.setattr(socket.socket, "connect", _forbidden("a network connection"))
            parsing.setattr(socket, "getaddrinfo", _forbidden("a DNS lookup"))
            parsing.setattr(Variable, "get", _forbidden("a Variable read"))
            parsing.setattr(BaseHook, "get_connection", _forbidden("a connection lookup"))
            bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
        yield bag


def dag_bag_class() -> type[DagBag]:
    """Airflow's DagBag, which moved to airflow.dag_processing in 3.2 (the old place warns there)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag


def xcom(run: DagRun, task_id: str, map_index: int = -1) -> Any:
    """A task's return value in a finished run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key="return_value", map_indexes=map_index
        )
        row = session.scalars(query).first()
        assert row is not None, f"no XCom from {task_id}[{map_index}]"
        return XComModel.deserialize_value(row)


def task_states(run: DagRun) -> dict[str, str]:
    return {
        ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": str(ti.state)
        for ti in run.get_task_instances()
    }


def run_ok(dagbag: DagBag, dag_id: str, **kwargs: Any) -> DagRun:
    run = dagbag.dags[dag_id].test(**kwargs)
    assert run.state == "success", task_states(run)
    return run


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sent_inputs(job: dict[str, Any]) -> dict[str, Any]:
    """The values a job was executed with, by display name."""
    return {item["displayName"]: item["value"] for item in job["jobPayloadSchemaInstance"].values()}


# -- parsing -----------------------------------------------------------------------------------------


def test_every_example_parses_without_network_or_variables(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXAMPLE_DAG_IDS
    for dag in dagbag.dags.values():
        assert {"opus", "example"} <= set(dag.tags), dag.dag_id


def test_workflow_ids_are_templates_rendered_at_run_time(dagbag: DagBag) -> None:
    from airflow_provider_opus.operators.opus import OpusExecuteJobOperator

    execute_tasks = [
        task
        for dag in dagbag.dags.values()
        for task in dag.tasks
        if getattr(task, "operator_class", type(task)) is OpusExecuteJobOperator
        or isinstance(task, OpusExecuteJobOperator)
    ]
    assert len(execute_tasks) == 4
    for task in execute_tasks:
        workflow_id = task.partial_kwargs["workflow_id"] if hasattr(task, "partial_kwargs") else task.workflow_id  # type: ignore[attr-defined]
        assert workflow_id.startswith("{{ var.value.get("), (task.dag_id, task.task_id, workflow_id)


def test_sample_invoices_are_pdfs() -> None:
    invoices = sorted(DATA.glob("invoice-*.pdf"))
    assert len(invoices) == 3
    for invoice in invoices:
        body = invoice.read_bytes()
        assert body.startswith(b"%PDF-1.4\n") and body.rstrip().endswith(b"%%EOF")
        # The cross-reference table points at each object's exact offset, as readers expect.
        xref_at = int(body.rsplit(b"startxref", 1)[1].split()[0])
        assert body[xref_at:].startswith(b"xref")
        entries = body[xref_at:].split(b"\n")[3:9]
        for number, entry in enumerate(entries, start=1):
            offset = int(entry.split()[0])
            assert body[offset:].startswith(b"%d 0 obj" % number), (invoice.name, number)


# -- runs ----------------------------------------------------------------------------------------------


def test_document_review(
    dagbag: DagBag, emulator: OpusEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output_folder = tmp_path / "outputs"
    monkeypatch.setenv("AIRFLOW_VAR_OPUS_OUTPUT_FOLDER", str(output_folder))
    run = run_ok(dagbag, "opus_document_review")

    (job,) = emulator.jobs()
    decision = xcom(run, "decide")
    assert decision["job_execution_id"] == job["jobExecutionId"] == xcom(run, "start_review")
    assert decision["verdict"] == "PASS" and decision["score"] == 92 and decision["approved"] is True
    assert decision["output_files"] == [
        f"{emulator.storage_url}/media/private/generated/output_{job['jobExecutionId']}.pdf"
    ]
    results = xcom(run, "get_results")
    assert results["status"] == "COMPLETED" and results["outputs"]["Inputs Received"] == 8 and "results" not in results
    assert results["outputs"]["Verdict"] == "PASS" and results["outputs"]["Reviewer Comments"] == decision["comments"]
    (downloaded,) = results["downloaded_files"]
    assert downloaded.startswith(str(output_folder / "opus_document_review"))
    with open(downloaded, "rb") as stream:
        assert stream.read() == expected_output_file(job["jobExecutionId"])

    inputs = sent_inputs(job)
    assert inputs["Customer Name"] == "ACME GmbH" and inputs["Threshold"] == 0.8
    assert inputs["Invoice"] == xcom(run, "upload_invoice")
    assert inputs["Supporting Documents"] == xcom(run, "upload_supporting_documents")
    assert inputs["Metadata"] == {"source": "airflow", "dag_run": run.run_id}
    due = dt.date.fromisoformat(inputs["Due Date"])
    assert due == (run.run_after + dt.timedelta(days=30)).date()
    # The three sample files arrived intact, and without the service key on the storage host.
    uploaded = {upload["sha256"] for upload in emulator.uploads() if upload.get("sha256")}
    expected = {"invoice-1001.pdf", "delivery-note-1001.csv", "purchase-order-1001.txt"}
    assert uploaded == {sha256(DATA / name) for name in expected}
    assert not any(put["had_service_key"] for put in emulator.requests("storage_put"))


def test_scheduled_report_sends_the_logical_date(dagbag: DagBag, emulator: OpusEmulator) -> None:
    logical_date = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
    run = run_ok(dagbag, "opus_scheduled_report", logical_date=logical_date)

    (job,) = emulator.jobs()
    assert job["workflowId"] == "DailyReport00001"
    assert job["title"] == "Daily sales report 2025-06-01 (EMEA)"
    assert sent_inputs(job) == {"Report Date": "2025-06-01", "Region": "EMEA", "Include Charts": True}
    summary = xcom(run, "publish")
    assert summary == {
        "report_date": "2025-06-01",
        "job_execution_id": job["jobExecutionId"],
        "total_sales": 18250.5,
        "orders": 412,
        "currency": "EUR",
        "files": [f"{emulator.storage_url}/media/private/generated/output_{job['jobExecutionId']}.pdf"],
    }
    assert dagbag.dags["opus_scheduled_report"].default_args["retries"] == 2


def test_batch_fanout_runs_one_job_per_file(dagbag: DagBag, emulator: OpusEmulator) -> None:
    run = run_ok(dagbag, "opus_batch_fanout")

    jobs = emulator.jobs()
    assert len(jobs) == 3
    summary = xcom(run, "summarize")
    assert summary["jobs"] == 3 and summary["passed"] == 3
    assert {row["job_execution_id"] for row in summary["rows"]} == {job["jobExecutionId"] for job in jobs}
    assert sorted(sent_inputs(job)["Metadata"]["file"] for job in jobs) == [
        "invoice-1001.pdf",
        "invoice-1002.pdf",
        "invoice-1003.pdf",
    ]
    # Each job's invoice is the local file, uploaded by the mapped operator before the job started.
    uploaded = {upload["sha256"] for upload in emulator.uploads()}
    assert uploaded == {sha256(path) for path in DATA.glob("invoice-*.pdf")}
    names = {ti.rendered_map_index for ti in run.get_task_instances() if ti.task_id == "review_invoice"}
    assert names == {"invoice-1001.pdf", "invoice-1002.pdf", "invoice-1003.pdf"}


def test_asset_chain_hands_the_job_to_the_consumer(
    dagbag: DagBag, emulator: OpusEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models import dagrun as dagrun_module
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    producer = run_ok(dagbag, "opus_asset_chain_producer")
    (job,) = emulator.jobs()
    job_id = job["jobExecutionId"]
    assert xcom(producer, "review_invoice") == job_id
    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == producer.run_id)).all()
        (extra,) = [event.extra for event in events]
        assert extra["job_execution_id"] == job_id
        assert extra["output_files"] == [f"{emulator.storage_url}/media/private/generated/output_{job_id}.pdf"]
        assert extra["outputs"]["Verdict"] == "PASS"
        # The job's files: the older results' "Output Files" list, today's file-typed "Generated Report".
        files = extra["outputs"].get("Output Files") or [extra["outputs"]["Generated Report"]]
        assert files == extra["output_files"]
        event_ids = [event.id for event in events]

    # The scheduler starts the consumer with the producer's asset event; dag.test() makes a manual
    # run, so attach the event to it the way the scheduler does for an asset-triggered run.
    create_run = dagrun_module.get_or_create_dagrun

    def create_run_with_event(**kwargs: Any) -> DagRun:
        run = create_run(**kwargs)
        session = kwargs["session"]
        run.consumed_asset_events.extend(session.scalars(select(AssetEvent).where(AssetEvent.id.in_(event_ids))))
        session.commit()
        return run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", create_run_with_event)
    consumer = run_ok(dagbag, "opus_asset_chain_consumer")
    assert xcom(consumer, "archive_outputs") == [
        {
            "job_execution_id": job_id,
            "verdict": "PASS",
            "output_files": [f"{emulator.storage_url}/media/private/generated/output_{job_id}.pdf"],
            "source_run_id": producer.run_id,
        }
    ]


def test_workflow_id_comes_from_the_variable_at_run_time(
    dagbag: DagBag, emulator: OpusEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An environment Variable, read when the task runs: the DAG was parsed long before it was set.
    monkeypatch.setenv("AIRFLOW_VAR_OPUS_WORKFLOW_ID", "NoSuchWorkflow01")
    run = dagbag.dags["opus_asset_chain_producer"].test()
    assert run.state == "failed"
    assert [request["path"] for request in emulator.requests("get_workflow")] == ["/workflow/NoSuchWorkflow01"]
    assert emulator.requests("initiate_job") == []


@pytest.mark.usefixtures("dagbag")
def test_the_readme_dag_runs(emulator: OpusEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow import settings

    DagBag = dag_bag_class()
    readme = (EXAMPLE_DAGS.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "readme_dag.py").write_text(code)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(tmp_path))
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    dag = bag.dags["opus_sales_report"]  # not getting-started's opus_daily_report: one test database holds both
    dag.task_dict["run_report"].poll_interval = 0.1  # type: ignore[union-attr]
    run = dag.test(logical_date=dt.datetime(2025, 6, 2, tzinfo=dt.timezone.utc))
    assert run.state == "success", task_states(run)
    (job,) = emulator.jobs()
    assert sent_inputs(job) == {"Report Date": "2025-06-02", "Region": "EMEA", "Include Charts": True}
