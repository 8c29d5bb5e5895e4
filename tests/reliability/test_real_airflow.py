"""
Reliability on a real Airflow (api-server, scheduler, dag-processor, triggerer; SQLite, LocalExecutor).

One deployment serves the whole module: the example DAGs and this suite's own DAGs run on it
with a distinctive service key, against the emulator in a separate process.

- secrets: after every example DAG ran, the key is in no file the deployment wrote (task and
  trigger logs, every process's output, the metadata database with XComs, rendered fields and
  trigger rows), no XCom value, no rendered field, no stored trigger kwargs, no ``airflow dags
  test`` output, and no request to the storage host;
- restarts: the triggerer is killed while triggers poll and started again; a task process is
  killed while it waits in the worker: every job completes, none is started twice;
- load: 200 jobs deferred at once in one triggerer all complete, no event lost or duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from cryptography.fernet import Fernet

from tests.reliability.conftest import CaseRecorder
from tests.support.deployment import AirflowDeployment, all_files, files_containing
from tests.support.emulator_process import EmulatorProcess

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
#: Distinctive, and long enough for Airflow's masker: if it leaks anywhere, a byte search finds it.
KEY = "opus-reliability-secret-4b1d0c9e7a2f58e3"
EXAMPLES = ("opus_document_review", "opus_scheduled_report", "opus_batch_fanout", "opus_asset_chain_producer")
DEFERRED = "opus_reliability_deferred"
WORKER_WAIT = "opus_reliability_worker_wait"


class Cluster:
    """The deployment and the emulator, with helpers the tests share."""

    def __init__(self, root: Path, airflow: AirflowDeployment, emulator: EmulatorProcess) -> None:
        self.root = root
        self.airflow = airflow
        self.emulator = emulator

    def configure(self, **settings: float) -> None:
        self.emulator.admin("POST", "config", json=settings)

    def jobs_titled(self, prefix: str) -> list[dict[str, Any]]:
        return [job for job in self.emulator.jobs() if job["title"].startswith(prefix)]

    def states(self, dag_id: str, run_id: str) -> list[str]:
        return [ti["state"] for ti in self.airflow.task_instances(dag_id, run_id) if ti["task_id"] == "run"]

    def wait_until(self, what: str, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            self.airflow.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting until {what}")
            time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("reliability-deployment")
    dags = root / "dags"
    shutil.copytree(ROOT / "example_dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tests" / "reliability" / "dags" / "opus_reliability.py", dags)
    emulator = EmulatorProcess(root, KEY, job_duration=5, api="legacy")
    emulator.start()
    env = {
        "AIRFLOW_CONN_OPUS_DEFAULT": emulator.connection_json(),
        "OPUS_POLL_INTERVAL": "1",
        # Adopt the triggers of a killed triggerer after 10 s instead of 30.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
        "AIRFLOW__CORE__PARALLELISM": "16",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "256",
        # The REST API pages task instances by 100 unless allowed more: the load test lists 200.
        "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
    }
    airflow = AirflowDeployment(root, dags, env=env)
    try:
        airflow.start()
        for dag_id in (*EXAMPLES, "opus_asset_chain_consumer", DEFERRED, WORKER_WAIT):
            airflow.wait_for_dag(dag_id)
        yield Cluster(root, airflow, emulator)
    finally:
        airflow.stop()
        emulator.stop()
        leftovers = [*airflow.leftovers(), *emulator.process.leftovers()]
        assert not leftovers, f"processes left running: {leftovers}"


# -- restarts ---------------------------------------------------------------------------------------


def test_triggerer_killed_while_triggers_poll(cluster: Cluster) -> None:
    recorder = CaseRecorder("restarts")
    airflow, jobs = cluster.airflow, 10
    cluster.configure(job_duration=25, job_duration_jitter=5)
    airflow.unpause(DEFERRED)
    run_id = airflow.trigger(DEFERRED, {"jobs": jobs})
    cluster.wait_until(
        f"{jobs} tasks deferred",
        lambda: cluster.states(DEFERRED, run_id).count("deferred") == jobs,
        timeout=120,
    )
    airflow.stop_component("triggerer", sig=signal.SIGKILL)
    time.sleep(3)
    airflow.start_component("triggerer")
    run = airflow.wait_for_run(DEFERRED, run_id, timeout=240)
    tis = [ti for ti in airflow.task_instances(DEFERRED, run_id) if ti["task_id"] == "run"]
    titles = [job["title"] for job in cluster.jobs_titled("job ")]
    completed = sum(ti["state"] == "success" for ti in tis)
    twice = sum(int(ti["try_number"]) > 1 for ti in tis) + len(titles) - len(set(titles))
    recorder.record(
        case="triggerer SIGKILLed with 10 OpusJobTriggers polling, then restarted",
        expected="every deferred task completes once; one job each",
        observed=f"{completed} of {jobs} completed; {len(titles)} jobs started; {twice} started or run twice",
        passed=run["state"] == "success" and completed == jobs and len(titles) == jobs and twice == 0,
        figures={
            "deferred tasks through a triggerer kill": jobs,
            "tasks lost": jobs - completed,
            "jobs duplicated": twice,
        },
    )
    assert run["state"] == "success", [ti["state"] for ti in tis]
    assert completed == jobs and twice == 0
    assert sorted(titles) == sorted(f"job {i}" for i in range(jobs))


def _task_processes(airflow: AirflowDeployment) -> list[psutil.Process]:
    """Processes running a task: the task runner forked by a LocalExecutor worker's supervisor."""
    scheduler = psutil.Process(airflow.processes["scheduler"].pid)
    found = []
    for proc in scheduler.children(recursive=True):
        try:
            parent = proc.parent()
            if parent is not None and parent.pid != scheduler.pid and parent.parent() is not None:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_task_process_killed_while_waiting_reattaches(cluster: Cluster) -> None:
    recorder = CaseRecorder("restarts")
    airflow = cluster.airflow
    cluster.configure(job_duration=15, job_duration_jitter=0)
    before = len(cluster.jobs_titled(f"{WORKER_WAIT}."))
    airflow.unpause(WORKER_WAIT)
    run_id = airflow.trigger(WORKER_WAIT)
    cluster.wait_until(
        "the job runs and the task waits for it",
        lambda: any(j["status"] == "IN PROGRESS" for j in cluster.jobs_titled(f"{WORKER_WAIT}.")),
        timeout=90,
    )
    time.sleep(1)
    victims = _task_processes(airflow)
    assert victims, "no task process found"
    for proc in victims:
        proc.send_signal(signal.SIGKILL)
    run = airflow.wait_for_run(WORKER_WAIT, run_id, timeout=180)
    (ti,) = airflow.task_instances(WORKER_WAIT, run_id)
    jobs = cluster.jobs_titled(f"{WORKER_WAIT}.")[before:]
    retry_log = airflow.task_log(WORKER_WAIT, run_id, "run", try_number=int(ti["try_number"]))
    reattached = "Reconnecting to existing job" in retry_log
    recorder.record(
        case="task process SIGKILLed while OpusExecuteJobOperator waits in the worker",
        expected="the retry reattaches to the same job (no second initiate)",
        observed=f"run {run['state']}; try {ti['try_number']}; {len(jobs)} job(s); reattached: {reattached}",
        passed=run["state"] == "success" and int(ti["try_number"]) == 2 and len(jobs) == 1 and reattached,
        figures={"jobs duplicated": len(jobs) - 1, "tasks lost": int(run["state"] != "success")},
    )
    assert run["state"] == "success"
    assert int(ti["try_number"]) == 2
    assert len(jobs) == 1, jobs
    assert reattached, retry_log[-2000:]


# -- load ---------------------------------------------------------------------------------------------


def _stored_trigger_kwargs(airflow: AirflowDeployment) -> list[str]:
    fernet = Fernet(airflow.env["AIRFLOW__CORE__FERNET_KEY"].encode())
    with sqlite3.connect(airflow.home / "airflow.db") as db:
        rows = [row[0] for row in db.execute("SELECT kwargs FROM trigger").fetchall() if row[0]]
    # Airflow stores them Fernet-encrypted (older rows may be plain JSON): read what the triggerer reads.
    return [row if row.startswith("{") else fernet.decrypt(row.encode()).decode() for row in rows]


def test_200_jobs_deferred_in_one_triggerer(cluster: Cluster) -> None:
    recorder = CaseRecorder("load")
    airflow, jobs = cluster.airflow, 200
    # The jobs run until every task has deferred, then finish together: a real burst of events.
    cluster.configure(job_duration=3600, job_duration_jitter=0)
    before = {job["jobExecutionId"] for job in cluster.emulator.jobs()}
    started = time.monotonic()
    run_id = airflow.trigger(DEFERRED, {"jobs": jobs})
    peak = 0
    kwargs_checked: list[str] = []

    def all_deferred() -> bool:
        nonlocal peak, kwargs_checked
        deferred = cluster.states(DEFERRED, run_id).count("deferred")
        if deferred > peak:
            peak = deferred
            kwargs_checked = _stored_trigger_kwargs(airflow)
        return deferred == jobs

    cluster.wait_until(f"{jobs} tasks deferred at once", all_deferred, timeout=600)
    deferred_after = time.monotonic() - started
    for job in cluster.emulator.jobs():
        if job["jobExecutionId"] not in before:
            cluster.emulator.admin("POST", f"jobs/{job['jobExecutionId']}/status", json={"status": "COMPLETED"})
    run = airflow.wait_for_run(DEFERRED, run_id, timeout=400, poll=2)
    elapsed = time.monotonic() - started
    tis = [ti for ti in airflow.task_instances(DEFERRED, run_id) if ti["task_id"] == "run"]
    new_jobs = [job for job in cluster.emulator.jobs() if job["jobExecutionId"] not in before]
    completed = sum(ti["state"] == "success" for ti in tis)
    resumed = _count_resumptions(airflow, run_id)
    duplicated = sum(count - 1 for count in resumed.values() if count > 1) + len(new_jobs) - jobs
    lost = jobs - completed
    leaked = sum(KEY in kwargs for kwargs in kwargs_checked)
    recorder.record(
        case=f"{jobs} OpusExecuteJobOperator tasks deferred at once",
        expected="all complete; each resumed exactly once; one job each; key in no stored trigger",
        observed=(
            f"{completed} completed in {elapsed:.0f} s (all {peak} deferred after {deferred_after:.0f} s); "
            f"{len(new_jobs)} jobs; {len(kwargs_checked)} stored triggers read, key in {leaked}"
        ),
        passed=run["state"] == "success" and lost == 0 and duplicated == 0 and peak == jobs and leaked == 0,
        figures={
            "jobs deferred at once in one triggerer": peak,
            "events lost": lost,
            "events or jobs duplicated": duplicated,
            "stored trigger kwargs holding the key": leaked,
        },
    )
    assert run["state"] == "success"
    assert peak == jobs and lost == 0 and duplicated == 0
    assert len(kwargs_checked) >= jobs - 5 and leaked == 0
    assert all(int(ti["try_number"]) == 1 for ti in tis)


def _count_resumptions(airflow: AirflowDeployment, run_id: str) -> dict[str, int]:
    """How often each mapped task resumed after its trigger fired (its task log says so once per resume)."""
    counts: dict[str, int] = {}
    for path in airflow.task_log_files(DEFERRED):
        if run_id in str(path) and "task_id=run" in str(path) and ".trigger." not in path.name:
            counts[str(path.parent)] = counts.get(str(path.parent), 0) + path.read_text().count("COMPLETED (workflow")
    return counts


# -- secrets ------------------------------------------------------------------------------------------


def test_the_key_appears_nowhere(cluster: Cluster) -> None:
    recorder = CaseRecorder("secrets")
    airflow = cluster.airflow
    cluster.configure(job_duration=8, job_duration_jitter=0)
    airflow.unpause("opus_asset_chain_consumer")
    run_ids = {}
    for dag_id in EXAMPLES:
        airflow.unpause(dag_id)
        run_ids[dag_id] = airflow.trigger(dag_id)
    for dag_id, run_id in run_ids.items():
        assert airflow.wait_for_run(dag_id, run_id, timeout=240)["state"] == "success", dag_id
    consumer_run = airflow.wait_for_new_run("opus_asset_chain_consumer", timeout=60)
    run_ids["opus_asset_chain_consumer"] = consumer_run
    assert airflow.wait_for_run("opus_asset_chain_consumer", consumer_run, timeout=120)["state"] == "success"

    xcoms, rendered = [], []
    for dag_id, run_id in run_ids.items():
        for ti in airflow.task_instances(dag_id, run_id):
            base = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
            entries = airflow.api("GET", f"{base}/xcomEntries", params={"map_index": ti.get("map_index", -1)})
            for entry in entries["xcom_entries"]:
                xcoms.append(json.dumps(airflow.xcom(dag_id, run_id, ti["task_id"], entry["key"], ti["map_index"])))
            rendered.append(json.dumps(ti.get("rendered_fields") or {}))
    storage_with_key = [r for r in cluster.emulator.admin("GET", "requests")["requests"] if r["listener"] == "storage"]
    places = {
        "task and trigger log files": files_containing(airflow.task_log_files(), KEY),
        "every process's output": files_containing(airflow.component_log_files(), KEY),
        "every file the deployment wrote (incl. the metadata DB)": files_containing(
            [p for p in all_files(cluster.root) if "dags" not in p.parts], KEY
        ),
        "XCom values": [x for x in xcoms if KEY in x],
        "rendered template fields": [r for r in rendered if KEY in r],
        "requests to the storage host carrying a key": [r for r in storage_with_key if r["had_service_key"]],
        "`airflow dags test` output": _dags_test_output_with_key(cluster),
    }
    for place, leaks in places.items():
        recorder.record(
            case=place,
            expected="no occurrence of the key",
            observed=f"{len(leaks)} found",
            passed=not leaks,
            figures={"leaks": len(leaks)},
        )
    assert len(xcoms) > 10 and len(rendered) > 10 and storage_with_key
    assert {place: leaks for place, leaks in places.items() if leaks} == {}


def _dags_test_output_with_key(cluster: Cluster) -> list[str]:
    """``airflow dags test`` prints task logs unmasked: the provider itself must never print the key."""
    env = {k: v for k, v in cluster.airflow.env.items()}
    env["AIRFLOW_HOME"] = str(cluster.root / "dags-test-home")
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{cluster.root / 'dags-test-home' / 'airflow.db'}"
    os.makedirs(env["AIRFLOW_HOME"], exist_ok=True)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, check=True)
    leaks = []
    for dag_id in ("opus_document_review", "opus_scheduled_report"):
        result = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        if KEY in result.stdout + result.stderr:
            leaks.append(dag_id)
    return leaks
