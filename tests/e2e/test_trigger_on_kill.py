"""
Marking a deferred task failed on a real Airflow 3.3 calls ``OpusJobTrigger.on_kill``; the Opus job keeps running.

Airflow 3.3's triggerer cancels a trigger whose row a user action removed with the message
``__airflow_user_action__`` and then awaits ``trigger.on_kill()`` (``TriggerRunner.run_trigger`` in
``airflow/jobs/triggerer_job_runner.py``): a PATCH of the task instance to ``failed`` takes it out of
``deferred``, the triggerer's ``Trigger.clean_unused`` deletes the trigger row, ``load_triggers`` no
longer finds it, and ``cancel_triggers`` cancels it. Opus has no cancel call, so ``on_kill`` only says in
the trigger's log that the job keeps running. One deployment (api-server, scheduler, dag-processor,
triggerer; SQLite, LocalExecutor) with the emulator as a process whose jobs outlast the test runs
``tests/e2e/dags/opus_on_kill.py``; once its task is deferred and its trigger polls, the test marks the
task failed through the REST API.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from packaging.version import Version

from airflow_provider_opus.compat import AIRFLOW_VERSION
from tests.conftest import SERVICE_KEY
from tests.support.deployment import AirflowDeployment
from tests.support.emulator_process import EmulatorProcess
from tests.support.processes import DeploymentError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import psutil

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(Version(AIRFLOW_VERSION) < Version("3.3"), reason="BaseTrigger.on_kill exists from Airflow 3.3"),
]

DAG_FILE = Path(__file__).resolve().parent / "dags" / "opus_on_kill.py"
DAG_ID = "opus_on_kill"
TASK_ID = "run"
#: Far longer than the test: the job must still run when the task is marked and after on_kill.
JOB_SECONDS = 900.0
#: The line only OpusJobTrigger.on_kill writes (the deadline event of run() says "keeps running." too).
ON_KILL_LINE = (
    "The deferred task was marked or cleared by a user. Opus has no cancel call: job {job} keeps running in Opus."
)
#: What the triggerer logs before awaiting on_kill (airflow/jobs/triggerer_job_runner.py).
USER_ACTION_LINE = "Trigger cancelled by user action, invoking on_kill"


@dataclass
class Outcome:
    """What the deployment did, collected before it was stopped."""

    job_id: str = ""
    state_when_marked: str | None = None
    trigger_log_when_marked: str = ""
    patched: list[dict[str, Any]] = field(default_factory=list)
    trigger_logs: dict[str, str] = field(default_factory=dict)
    task_instance: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    leftovers: list[psutil.Process] = field(default_factory=list)


def wait_until(airflow: AirflowDeployment, what: str, condition: Callable[[], bool], timeout: float) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` s or when a component died."""
    deadline = time.monotonic() + timeout
    while not condition():
        airflow.check_alive()
        if time.monotonic() > deadline:
            raise DeploymentError(f"Not within {timeout:.0f} s: {what}")
        time.sleep(0.5)


def trigger_logs(airflow: AirflowDeployment) -> dict[str, str]:
    """The trigger log files of the DAG's task (``attempt=1.log.trigger.<triggerer job id>.log``), by name."""
    return {path.name: path.read_text() for path in airflow.task_log_files(DAG_ID) if ".log.trigger." in path.name}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    root = tmp_path_factory.mktemp("e2e-on-kill")
    dags = root / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags)
    result = Outcome()
    # Leaving the block stops the deployment, then the emulator, whatever happened inside it.
    with (
        EmulatorProcess(root, SERVICE_KEY, job_duration=JOB_SECONDS, api="current") as emulator,
        AirflowDeployment(root, dags, env={"AIRFLOW_CONN_OPUS_DEFAULT": emulator.connection_json()}) as airflow,
    ):
        airflow.start()
        run_id = airflow.trigger(DAG_ID)
        ti_path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id)}/taskInstances/{TASK_ID}"

        def trigger_polls() -> bool:
            # The trigger runs in the triggerer once its log shows a status it read from Opus.
            jobs = emulator.jobs()
            if len(jobs) != 1:
                return False
            result.job_id = jobs[0]["jobExecutionId"]
            polled = f"Opus job {result.job_id} is IN PROGRESS"
            return any(polled in text for text in trigger_logs(airflow).values())

        # Scheduling, a worker, the first half of the task and the triggerer picking the trigger up.
        wait_until(airflow, "the task deferred and its trigger polling the job", trigger_polls, timeout=180)
        result.state_when_marked = airflow.api("GET", ti_path)["state"]
        result.trigger_log_when_marked = "\n".join(trigger_logs(airflow).values())
        # The public API's patch_task_instance (PatchTaskInstanceBody): sets the state as a user marking it does.
        result.patched = airflow.api("PATCH", ti_path, json={"new_state": "failed"})["task_instances"]

        def trigger_ended() -> bool:
            # The triggerer writes "trigger completed" after it awaited on_kill (run_trigger's finally): wait for
            # the trigger's end, not for on_kill's line, so a missing on_kill fails an assertion below at once.
            return any("trigger completed" in text for text in trigger_logs(airflow).values())

        wait_until(airflow, "the cancelled trigger's end in its log", trigger_ended, timeout=120)
        result.trigger_logs = trigger_logs(airflow)
        result.task_instance = dict(airflow.api("GET", ti_path))
        result.run = airflow.wait_for_run(DAG_ID, run_id, timeout=120)
        result.jobs = emulator.jobs()
        for endpoint in ("initiate_job", "execute_job"):
            result.requests[endpoint] = emulator.admin("GET", "requests", params={"endpoint": endpoint})["requests"]
    result.leftovers = airflow.leftovers() + emulator.process.leftovers()
    yield result


def test_the_task_was_deferred_with_its_trigger_polling_when_marked_failed(outcome: Outcome) -> None:
    assert outcome.state_when_marked == "deferred"
    assert f"Opus job {outcome.job_id} is IN PROGRESS" in outcome.trigger_log_when_marked
    assert USER_ACTION_LINE not in outcome.trigger_log_when_marked
    assert [(ti["task_id"], ti["state"]) for ti in outcome.patched] == [(TASK_ID, "failed")]


def test_marking_it_failed_calls_on_kill_which_says_the_job_keeps_running(outcome: Outcome) -> None:
    (name, log) = next(iter(outcome.trigger_logs.items()))
    assert len(outcome.trigger_logs) == 1, sorted(outcome.trigger_logs)
    assert name.startswith("attempt=1.log.trigger."), name
    line = ON_KILL_LINE.format(job=outcome.job_id)
    assert USER_ACTION_LINE in log and line in log, log[-3000:]
    # The triggerer's own line, then the provider's, then the trigger's end, in that order.
    user_action = log.index(USER_ACTION_LINE)
    on_kill = log.index(line)
    assert user_action < on_kill < log.rindex("trigger completed"), log[-3000:]
    assert "on_kill() raised an exception" not in log and "on_kill() timed out" not in log
    # The line is the trigger's own warning (JSON lines, one record each), logged once.
    records = [json.loads(entry) for entry in log.splitlines() if entry.strip()]
    (record,) = (r for r in records if r.get("event") == line)
    assert record["level"] == "warning"
    assert record["logger"] == "airflow_provider_opus.triggers.opus.OpusJobTrigger"
    assert "Trigger fired event" not in log  # cancelled, not ended by an event


def test_the_job_keeps_running_and_only_one_was_started(outcome: Outcome) -> None:
    (job,) = outcome.jobs
    assert job["jobExecutionId"] == outcome.job_id
    assert job["title"] == f"{DAG_ID}.{TASK_ID}"
    assert job["status"] == "IN PROGRESS"  # not cancelled: Opus has no cancel call
    assert len(outcome.requests["initiate_job"]) == 1
    assert len(outcome.requests["execute_job"]) == 1
    ti = outcome.task_instance
    assert (ti["state"], ti["try_number"]) == ("failed", 1)
    assert outcome.run["state"] == "failed"


def test_no_process_is_left(outcome: Outcome) -> None:
    assert not outcome.leftovers
