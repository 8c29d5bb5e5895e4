"""
execution_timeout ends a deferred wait on a real Airflow deployment; the retry reattaches; one job is billed.

Airflow 3.3 does not apply ``execution_timeout`` to a deferred task (see /work/shared/airflow-notes.md):
the provider folds it into the trigger's deadline. One deployment (api-server, scheduler, dag-processor,
triggerer; SQLite, LocalExecutor), with the emulator as a process whose jobs run 50 s, runs both DAGs of
``tests/e2e/dags/opus_deadlines.py`` at once: a deferred ``OpusExecuteJobOperator`` and a deferred
``OpusJobSensor``, each with ``execution_timeout=20 s`` and two retries. Each try must end at its own
deadline while the job runs on; the retries reattach to the same job, and the last one sees it complete.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import SERVICE_KEY
from tests.support.deployment import AirflowDeployment
from tests.support.emulator_process import EmulatorProcess

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

DAGS = Path(__file__).resolve().parent / "dags"
OPERATOR = "opus_deadline_operator"
SENSOR = "opus_deadline_sensor"
#: The task of each DAG that waits with execution_timeout.
WAITING_TASK = {OPERATOR: "run", SENSOR: "wait"}
#: Two and a half tries: the first try surely ends long before the job, and the job surely ends before the
#: third try's deadline even when the first try waited several seconds for a worker (each try's 20 s count
#: from its own start, and every retry starts a few seconds after the previous try's deadline).
JOB_SECONDS = 50.0


@dataclass
class Outcome:
    """What the deployment did, collected before it was stopped."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    logs: dict[tuple[str, int], str] = field(default_factory=dict)
    return_values: dict[str, Any] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    leftovers: list[Any] = field(default_factory=list)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    root = tmp_path_factory.mktemp("e2e-deadlines")
    dags = root / "dags"
    shutil.copytree(DAGS, dags, ignore=shutil.ignore_patterns("__pycache__"))
    result = Outcome()
    # Leaving the block stops the deployment, then the emulator, whatever happened inside it.
    with (
        EmulatorProcess(root, SERVICE_KEY, job_duration=JOB_SECONDS, api="current") as emulator,
        AirflowDeployment(root, dags, env={"AIRFLOW_CONN_OPUS_DEFAULT": emulator.connection_json()}) as airflow,
    ):
        airflow.start()
        run_ids = {dag_id: airflow.trigger(dag_id) for dag_id in (OPERATOR, SENSOR)}
        for dag_id, run_id in run_ids.items():
            # Three tries of about 20 s each, plus scheduling: well under the bound.
            result.runs[dag_id] = airflow.wait_for_run(dag_id, run_id, timeout=240)
        for dag_id, run_id in run_ids.items():
            task_id = WAITING_TASK[dag_id]
            path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
            result.tries[dag_id] = sorted(airflow.api("GET", path)["task_instances"], key=lambda ti: ti["try_number"])
            for ti in result.tries[dag_id]:
                number = int(ti["try_number"])
                result.errors[(dag_id, number)] = airflow.task_errors(dag_id, run_id, task_id, number)
                result.logs[(dag_id, number)] = airflow.task_log(dag_id, run_id, task_id, number)
            result.return_values[dag_id] = airflow.xcom(dag_id, run_id, task_id, default=None)
        result.return_values["start"] = airflow.xcom(SENSOR, run_ids[SENSOR], "start", default=None)
        result.jobs = emulator.jobs()
        for endpoint in ("initiate_job", "execute_job"):
            result.requests[endpoint] = emulator.admin("GET", "requests", params={"endpoint": endpoint})["requests"]
    result.leftovers = airflow.leftovers() + emulator.process.leftovers()
    yield result


def job_of(outcome: Outcome, dag_id: str) -> dict[str, Any]:
    (job,) = (job for job in outcome.jobs if job["title"].startswith(f"{dag_id}."))
    return job


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize("dag_id", [OPERATOR, SENSOR])
def test_the_first_try_ends_at_execution_timeout_while_the_job_runs(outcome: Outcome, dag_id: str) -> None:
    first = outcome.tries[dag_id][0]
    assert first["try_number"] == 1 and first["state"] in ("failed", "up_for_retry"), first
    ran = when(first["end_date"]) - when(first["start_date"])
    # 20 s and the resume: not the 50 s the job runs (which is what Airflow alone would wait).
    assert ran < dt.timedelta(seconds=45), ran
    assert when(first["end_date"]) < when(job_of(outcome, dag_id)["finishesAt"]) - dt.timedelta(seconds=10)
    errors = outcome.errors[(dag_id, 1)]
    assert any(
        error.startswith("AirflowTaskTimeout: execution_timeout (0:00:20) passed") and "keeps running" in error
        for error in errors
    ), errors


@pytest.mark.parametrize("dag_id", [OPERATOR, SENSOR])
def test_a_retry_waits_for_the_same_job_and_succeeds(outcome: Outcome, dag_id: str) -> None:
    assert outcome.runs[dag_id]["state"] == "success", outcome.tries[dag_id]
    last = outcome.tries[dag_id][-1]
    assert last["state"] == "success" and last["try_number"] > 1
    job = job_of(outcome, dag_id)
    assert job["status"] == "COMPLETED"
    for ti in outcome.tries[dag_id][1:]:
        assert job["jobExecutionId"] in outcome.logs[(dag_id, int(ti["try_number"]))]


def test_the_operator_retries_reattach_instead_of_starting_jobs(outcome: Outcome) -> None:
    job = job_of(outcome, OPERATOR)
    assert outcome.return_values[OPERATOR] == job["jobExecutionId"]
    for ti in outcome.tries[OPERATOR][1:]:
        log = outcome.logs[(OPERATOR, int(ti["try_number"]))]
        # A retry that starts while the job runs waits for it; on a busy machine the last one can start
        # after the job completed, and returns at once. Neither starts a job.
        reattached = "Reconnecting to existing job" in log
        assert reattached or "Job already completed successfully, skipping resubmission" in log, log[-3000:]
        if when(ti["start_date"]) < when(job["finishesAt"]) - dt.timedelta(seconds=5):
            assert reattached, log[-3000:]
    assert outcome.return_values["start"] == job_of(outcome, SENSOR)["jobExecutionId"]


def test_one_job_is_billed_per_dag(outcome: Outcome) -> None:
    assert sorted(job["title"] for job in outcome.jobs) == [f"{OPERATOR}.run", f"{SENSOR}.start"]
    assert len(outcome.requests["initiate_job"]) == 2
    assert len(outcome.requests["execute_job"]) == 2
    assert not outcome.leftovers
