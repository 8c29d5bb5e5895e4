"""
The provider on a distributed Airflow: PostgreSQL, Redis, the CeleryExecutor, two schedulers, two
triggerers and two Celery workers, each its own process (``tests/support/distributed.py``), with the
emulator as the Opus service. One deployment serves the module; its tests run in order:

- load: 200 deferred Opus tasks at once, spread over both triggerers; each job initiated and executed once;
- two schedulers: bursts of runs at once; both schedulers queue tasks, none runs twice, no job twice;
- triggerer failover: the triggerer holding deferred tasks is SIGKILLed; the other takes its triggers
  over, each trigger keeps its grown poll interval, every task succeeds, no job twice;
- worker failover: the Celery worker running a task that waits for its job is SIGKILLed; the retry runs
  on the other worker and reattaches to the same job;
- the service key is in no file any component wrote (PostgreSQL's and Redis's data included), once
  everything has stopped.

Figures go to docs/reliability.md ("Distributed deployment"). Run with ``make e2e-distributed``.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet

from tests.reliability.conftest import CaseRecorder
from tests.support.deployment import all_files, files_containing
from tests.support.distributed import DistributedDeployment, make_root, stop_abandoned
from tests.support.emulator_process import EmulatorProcess

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
CATEGORY = "distributed"
#: Distinctive, and long enough for Airflow's masker: if it leaks anywhere, a byte search finds it.
KEY = "opus-distributed-secret-5e8a2c7b9d14f036"
LOAD, FAILOVER, WORKER_WAIT, BURST = (
    "opus_distributed_load",
    "opus_distributed_failover",
    "opus_distributed_worker_wait",
    "opus_distributed_burst",
)
LOAD_JOBS = 200
#: Each triggerer runs at most this many triggers. With Airflow's default (1000) the first triggerer to
#: look claims every unassigned trigger; with 120, 200 deferred tasks need both.
TRIGGERER_CAPACITY = 120
FAILOVER_JOBS = 20
BURST_RUNS, BURST_JOBS = 6, 10
#: A dead triggerer's triggers are taken over this long after its last heartbeat (Airflow's default: 30).
HEALTH_CHECK_THRESHOLD = 10
#: A task whose supervisor has not heartbeaten for this long is failed by a scheduler (default: 300).
TASK_HEARTBEAT_TIMEOUT = 20


class Cluster:
    """The deployment and the emulator, with what the tests share."""

    def __init__(self, root: Path, airflow: DistributedDeployment, emulator: EmulatorProcess) -> None:
        self.root = root
        self.airflow = airflow
        self.emulator = emulator

    def configure(self, **settings: float) -> None:
        self.emulator.admin("POST", "config", json=settings)

    def jobs_of(self, run_id: str) -> list[dict[str, Any]]:
        """The emulator's jobs a run started: their titles begin with the run id."""
        return [job for job in self.emulator.jobs() if job["title"] == run_id or job["title"].startswith(f"{run_id} ")]

    def requests(self, endpoint: str, since: float) -> list[dict[str, Any]]:
        """The emulator's logged requests to one endpoint since a moment (``time.time()``)."""
        entries = self.emulator.admin("GET", "requests", params={"endpoint": endpoint})["requests"]
        return [entry for entry in entries if entry["time"] >= since]

    def calls(self, endpoint: str, since: float) -> Counter[str]:
        """How many requests to an endpoint since a moment succeeded ("ok") and how many did not ("failed")."""
        return Counter("ok" if 200 <= entry["status"] < 300 else "failed" for entry in self.requests(endpoint, since))

    def polls(self, since: float = 0.0) -> dict[str, list[float]]:
        """The times of each job's status requests, by job id."""
        times: dict[str, list[float]] = {}
        for entry in self.requests("get_job_status", since):
            times.setdefault(entry["path"].split("/")[2], []).append(entry["time"])
        return times

    def complete(self, jobs: list[dict[str, Any]]) -> None:
        for job in jobs:
            self.emulator.admin("POST", f"jobs/{job['jobExecutionId']}/status", json={"status": "COMPLETED"})

    def task_rows(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's ``run`` task instances from the metadata database, with their trigger's triggerer."""
        rows = self.airflow.sql(
            "SELECT ti.map_index, ti.state, ti.try_number, ti.pid, ti.queued_by_job_id, t.id, t.triggerer_id, "
            "t.kwargs FROM task_instance ti LEFT JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = 'run' ORDER BY ti.map_index",
            (dag_id, run_id),
        )
        keys = ("map_index", "state", "try_number", "pid", "queued_by", "trigger_id", "triggerer_id", "kwargs")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float, poll: float = 1.0) -> float:
        """Wait until ``check()`` holds; return the seconds it took."""
        started = time.monotonic()
        while not check():
            self.airflow.check_alive()
            if time.monotonic() - started > timeout:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting until {what}")
            time.sleep(poll)
        return time.monotonic() - started

    def component_name(self, job_id: int | None) -> str:
        """The scheduler or triggerer whose ``job`` row has this id."""
        names = {job: name for name, job in self.airflow.job_ids.items()}
        return names.get(job_id, f"job {job_id}") if job_id is not None else "unassigned"

    def waiting_since(self, kwargs: str | None) -> float | None:
        """The ``waiting_since`` a trigger row was stored with (Airflow keeps its kwargs Fernet-encrypted)."""
        if not kwargs:
            return None
        if not kwargs.startswith("{"):
            fernet = Fernet(self.airflow.env["AIRFLOW__CORE__FERNET_KEY"].encode())
            kwargs = fernet.decrypt(kwargs.encode()).decode()
        return _find_key(json.loads(kwargs), "waiting_since")


def _find_key(value: Any, key: str) -> Any:
    """The value of ``key`` anywhere in a decoded JSON document (Airflow nests serialised kwargs)."""
    if isinstance(value, dict):
        if key in value:
            found = value[key]
            return found.get("__var", found) if isinstance(found, dict) else found
        for item in value.values():
            found = _find_key(item, key)
            if found is not None:
                return found
    if isinstance(value, list):
        for item in value:
            found = _find_key(item, key)
            if found is not None:
                return found
    return None


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    stop_abandoned()
    failed_before = request.session.testsfailed
    root = make_root()
    dags = root / "dags"
    shutil.copytree(ROOT / "tests" / "distributed" / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    emulator = EmulatorProcess(root, KEY, job_duration=5, api="current")
    env = {
        "OPUS_POLL_INTERVAL": "1",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_CHECK_THRESHOLD),
        "AIRFLOW__TRIGGERER__CAPACITY": str(TRIGGERER_CAPACITY),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "256",
        "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "16",
        "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
    }
    airflow: DistributedDeployment | None = None
    try:
        emulator.start()
        env["AIRFLOW_CONN_OPUS_DEFAULT"] = emulator.connection_json()
        airflow = DistributedDeployment(root, dags, env=env)
        started = time.monotonic()
        airflow.start()
        for dag_id in (LOAD, FAILOVER, WORKER_WAIT, BURST):
            airflow.wait_for_dag(dag_id)
        print(f"\ndistributed deployment in {root}: healthy after {time.monotonic() - started:.0f} s")
        yield Cluster(root, airflow, emulator)
    finally:
        if airflow is not None:
            airflow.stop()
        emulator.stop()
        leftovers = [*(airflow.leftovers() if airflow else []), *emulator.process.leftovers()]
        assert not leftovers, f"processes left running: {leftovers}"
        if request.session.testsfailed == failed_before:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"\nthe failed distributed deployment's files are kept in {root}")


# -- 1. load across triggerers ---------------------------------------------------------------------


def test_200_deferred_tasks_spread_over_both_triggerers(cluster: Cluster) -> None:
    recorder = CaseRecorder(CATEGORY)
    airflow, triggerers = cluster.airflow, ("triggerer-1", "triggerer-2")
    # The jobs run until every task has deferred, then finish together: a burst of events.
    cluster.configure(job_duration=3600, job_duration_jitter=0)
    since, started = time.time(), time.monotonic()
    run_id = airflow.trigger(LOAD, {"jobs": LOAD_JOBS})
    split: Counter[str] = Counter()

    def all_deferred_and_assigned() -> bool:
        rows = cluster.task_rows(LOAD, run_id)
        held = [row for row in rows if row["state"] == "deferred" and row["triggerer_id"] is not None]
        if len(held) == LOAD_JOBS:
            split.update(cluster.component_name(row["triggerer_id"]) for row in held)
            return True
        return False

    deferred_after = cluster.wait_until(f"{LOAD_JOBS} tasks deferred at once", all_deferred_and_assigned, 420, 2)
    jobs = cluster.jobs_of(run_id)
    # Every trigger runs: each job is polled while all are deferred, each poll made by its trigger.
    cluster.wait_until(
        "every deferred job is polled",
        lambda: len(cluster.polls(since).keys() & {j["jobExecutionId"] for j in jobs}) == LOAD_JOBS,
        60,
    )
    cluster.complete(jobs)
    run = airflow.wait_for_run(LOAD, run_id, timeout=300, poll=2)
    elapsed = time.monotonic() - started
    rows = cluster.task_rows(LOAD, run_id)
    # Each triggerer writes the log of a trigger it ran next to the task's log: <try>.log.trigger.<job id>.log.
    ran = Counter(
        cluster.component_name(int(path.name.rsplit(".", 2)[-2]))
        for path in airflow.task_log_files(LOAD)
        if run_id in str(path) and ".log.trigger." in path.name
    )
    jobs = cluster.jobs_of(run_id)
    initiates = len(cluster.requests("initiate_job", since))
    executes = cluster.calls("execute_job", since)
    succeeded = sum(row["state"] == "success" for row in rows)
    retried = sum(row["try_number"] != 1 for row in rows)
    titles = {job["title"] for job in jobs}
    recorder.record(
        case=f"load: {LOAD_JOBS} deferrable OpusExecuteJobOperator tasks at once over two triggerers",
        expected="both triggerers run some; all succeed; every job initiated and executed exactly once",
        observed=(
            f"all {LOAD_JOBS} deferred after {deferred_after:.0f} s, held "
            + ", ".join(f"{name} {split[name]}" for name in triggerers)
            + f" (capacity {TRIGGERER_CAPACITY} each); {succeeded} succeeded after {elapsed:.0f} s; "
            f"{len(jobs)} jobs, {initiates} initiate and {sum(executes.values())} execute calls"
        ),
        passed=(
            run["state"] == "success"
            and succeeded == LOAD_JOBS
            and all(split[name] > 0 and ran[name] > 0 for name in triggerers)
            and len(jobs) == len(titles) == initiates == executes["ok"] == LOAD_JOBS
            and retried == 0
        ),
        figures={
            "load: deferred tasks at once": LOAD_JOBS,
            "load: triggers run by triggerer-1": ran["triggerer-1"],
            "load: triggers run by triggerer-2": ran["triggerer-2"],
            "load: tasks lost": LOAD_JOBS - succeeded,
            "load: jobs initiated or executed twice": initiates - LOAD_JOBS + sum(executes.values()) - LOAD_JOBS,
        },
    )
    assert run["state"] == "success" and succeeded == LOAD_JOBS, Counter(row["state"] for row in rows)
    assert all(split[name] > 0 for name in triggerers), split
    assert all(ran[name] > 0 for name in triggerers), ran
    assert len(jobs) == len(titles) == LOAD_JOBS, len(jobs)
    assert initiates == LOAD_JOBS and dict(executes) == {"ok": LOAD_JOBS}, (initiates, executes)
    assert retried == 0


# -- 4. two schedulers --------------------------------------------------------------------------------


def test_two_schedulers_run_each_task_once(cluster: Cluster) -> None:
    recorder = CaseRecorder(CATEGORY)
    airflow = cluster.airflow
    cluster.configure(job_duration=2, job_duration_jitter=1)
    since, started = time.time(), time.monotonic()
    run_ids = [airflow.trigger(BURST, {"jobs": BURST_JOBS}) for _ in range(BURST_RUNS)]
    runs = [airflow.wait_for_run(BURST, run_id, timeout=300, poll=2) for run_id in run_ids]
    elapsed = time.monotonic() - started
    tasks = BURST_RUNS * BURST_JOBS
    jobs = [job for run_id in run_ids for job in cluster.jobs_of(run_id)]
    initiates = len(cluster.requests("initiate_job", since))
    executes = cluster.calls("execute_job", since)
    # Across everything this deployment has run so far (the load test's 200 tasks too): who queued
    # each task instance, how often each ran (try_number), and whether any try was ever replaced.
    queued_by = Counter(
        cluster.component_name(row[0])
        for row in airflow.sql("SELECT queued_by_job_id FROM task_instance WHERE queued_by_job_id IS NOT NULL")
    )
    tries = Counter(row[0] for row in airflow.sql("SELECT try_number FROM task_instance"))
    history = airflow.sql("SELECT count(*) FROM task_instance_history")[0][0]
    all_tis = sum(tries.values())
    all_jobs = len(cluster.emulator.jobs())
    opus_tis = airflow.sql("SELECT count(*) FROM task_instance WHERE task_id = 'run'")[0][0]
    succeeded = sum(run["state"] == "success" for run in runs)
    recorder.record(
        case=f"two schedulers: {BURST_RUNS} runs x {BURST_JOBS} Opus tasks at once, and all earlier runs",
        expected="both schedulers queue tasks; no task instance runs twice; no job initiated twice",
        observed=(
            f"{succeeded} of {BURST_RUNS} runs succeeded in {elapsed:.0f} s; {len(jobs)} jobs, {initiates} initiate "
            f"and {sum(executes.values())} execute calls for {tasks} tasks; of {all_tis} task instances so far, "
            + ", ".join(f"{name} queued {count}" for name, count in sorted(queued_by.items()))
            + f"; {all_tis - tries[1]} ran more than once; {all_jobs} jobs for {opus_tis} Opus tasks"
        ),
        passed=(
            succeeded == BURST_RUNS
            and len(jobs) == initiates == executes["ok"] == tasks
            and queued_by["scheduler-1"] > 0
            and queued_by["scheduler-2"] > 0
            and tries[1] == all_tis
            and history == 0
            and all_jobs == opus_tis
        ),
        figures={
            "schedulers: task instances queued by scheduler-1": queued_by["scheduler-1"],
            "schedulers: task instances queued by scheduler-2": queued_by["scheduler-2"],
            "schedulers: task instances run twice": all_tis - tries[1],
            "schedulers: jobs initiated twice": all_jobs - opus_tis,
        },
    )
    assert succeeded == BURST_RUNS, [run["state"] for run in runs]
    assert len(jobs) == len({job["title"] for job in jobs}) == initiates == tasks, (len(jobs), initiates)
    assert dict(executes) == {"ok": tasks}, executes
    assert queued_by["scheduler-1"] > 0 and queued_by["scheduler-2"] > 0, queued_by
    assert tries == Counter({1: all_tis}) and history == 0, (tries, history)
    assert all_jobs == opus_tis, (all_jobs, opus_tis)


# -- 2. triggerer failover ---------------------------------------------------------------------------


def _gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_triggerer_killed_its_triggers_move_and_keep_their_poll_interval(cluster: Cluster) -> None:
    recorder = CaseRecorder(CATEGORY)
    airflow = cluster.airflow
    cluster.configure(job_duration=3600, job_duration_jitter=0)
    since = time.time()
    run_id = airflow.trigger(FAILOVER, {"jobs": FAILOVER_JOBS})
    cluster.wait_until(
        f"{FAILOVER_JOBS} tasks deferred and assigned",
        lambda: (
            [(r["state"], r["triggerer_id"] is not None) for r in cluster.task_rows(FAILOVER, run_id)]
            == [("deferred", True)] * FAILOVER_JOBS
        ),
        180,
    )
    before = cluster.task_rows(FAILOVER, run_id)
    victim = Counter(cluster.component_name(row["triggerer_id"]) for row in before).most_common(1)[0][0]
    survivor = next(name for name in ("triggerer-1", "triggerer-2") if name != victim)
    moved = {row["map_index"]: row for row in before if cluster.component_name(row["triggerer_id"]) == victim}
    jobs = {job["title"]: job["jobExecutionId"] for job in cluster.jobs_of(run_id)}
    moved_jobs = {jobs[f"{run_id} {index}"] for index in moved}

    # Let the wait between polls grow (a tenth of the time waited) to 4 s or more before the kill.
    def grown() -> bool:
        polls = cluster.polls(since)
        return all(len(polls.get(job, [])) >= 3 and _gaps(polls[job])[-1] >= 4 for job in moved_jobs)

    cluster.wait_until("the poll interval grows to 4 s", grown, 180)
    killed_at = time.time()
    airflow.kill_component(victim)
    cluster.wait_until(
        f"{survivor} takes over every trigger",
        lambda: {cluster.component_name(r["triggerer_id"]) for r in cluster.task_rows(FAILOVER, run_id)} == {survivor},
        HEALTH_CHECK_THRESHOLD + 60,
    )
    taken_over_after = time.time() - killed_at
    cluster.wait_until(
        "each moved trigger polls twice",
        lambda: all(len(cluster.polls(killed_at).get(job, [])) >= 2 for job in moved_jobs),
        90,
    )
    after = {row["map_index"]: row for row in cluster.task_rows(FAILOVER, run_id)}
    polls_before, polls_after = cluster.polls(since), cluster.polls(killed_at)
    last_before = {job: _gaps([t for t in polls_before[job] if t < killed_at])[-1] for job in moved_jobs}
    first_after = {job: _gaps(polls_after[job])[0] for job in moved_jobs}
    started_waiting = {index: cluster.waiting_since(row["kwargs"]) for index, row in moved.items()}
    kept_start = sum(
        started is not None and cluster.waiting_since(after[index]["kwargs"]) == started
        for index, started in started_waiting.items()
    )
    # A trigger that had forgotten how long it had waited would poll every second (poll_interval) again.
    kept_interval = sum(first_after[job] >= 0.9 * last_before[job] for job in moved_jobs)
    cluster.complete(list(cluster.jobs_of(run_id)))
    run = airflow.wait_for_run(FAILOVER, run_id, timeout=180)
    rows = cluster.task_rows(FAILOVER, run_id)
    succeeded = sum(row["state"] == "success" for row in rows)
    retried = sum(row["try_number"] != 1 for row in rows)
    initiates = len(cluster.requests("initiate_job", since))
    executes = cluster.calls("execute_job", since)
    recorder.record(
        case=f"triggerer failover: {victim} SIGKILLed (its whole process tree) holding {len(moved)} of "
        f"{FAILOVER_JOBS} deferred Opus tasks",
        expected=f"{survivor} takes them over; each keeps its grown poll interval; all succeed; no job twice",
        observed=(
            f"taken over {taken_over_after:.0f} s after the kill (health check threshold {HEALTH_CHECK_THRESHOLD} s); "
            f"poll gap before the kill median {statistics.median(last_before.values()):.1f} s, first gap after "
            f"the move median {statistics.median(first_after.values()):.1f} s (poll_interval 1 s); "
            f"{kept_interval} of {len(moved)} kept the interval, {kept_start} kept waiting_since; "
            f"{succeeded} of {FAILOVER_JOBS} succeeded; {initiates} initiate, {sum(executes.values())} execute calls"
        ),
        passed=(
            run["state"] == "success"
            and succeeded == FAILOVER_JOBS
            and retried == 0
            and kept_interval == kept_start == len(moved)
            and initiates == executes["ok"] == FAILOVER_JOBS
        ),
        figures={
            "triggerer failover: deferred tasks moved": len(moved),
            "triggerer failover: tasks lost": FAILOVER_JOBS - succeeded,
            "triggerer failover: poll intervals reset by the move": len(moved) - kept_interval,
            "triggerer failover: jobs initiated twice": initiates - FAILOVER_JOBS,
        },
    )
    assert moved, before
    assert kept_start == len(moved), "a moved trigger was stored with another waiting_since"
    assert kept_interval == len(moved), {job: (last_before[job], first_after[job]) for job in moved_jobs}
    assert run["state"] == "success" and succeeded == FAILOVER_JOBS and retried == 0, rows
    assert initiates == FAILOVER_JOBS and dict(executes) == {"ok": FAILOVER_JOBS}, (initiates, executes)
    assert len(cluster.jobs_of(run_id)) == FAILOVER_JOBS


# -- 3. worker failover ------------------------------------------------------------------------------


def test_worker_killed_the_retry_reattaches_on_the_other_worker(cluster: Cluster) -> None:
    recorder = CaseRecorder(CATEGORY)
    airflow = cluster.airflow
    cluster.configure(job_duration=3600, job_duration_jitter=0)
    since = time.time()
    run_id = airflow.trigger(WORKER_WAIT)
    where: dict[int, str | None] = {}

    def waiting_in_a_worker(try_number: int, polled_since: float) -> Callable[[], bool]:
        """Whether the try runs in a worker (found by the task's pid) and has polled its job since then."""

        def check() -> bool:
            rows, jobs = cluster.task_rows(WORKER_WAIT, run_id), cluster.jobs_of(run_id)
            if len(rows) != 1 or len(jobs) != 1:
                return False
            row = rows[0]
            if row["state"] != "running" or row["try_number"] != try_number or not row["pid"]:
                return False
            where[try_number] = airflow.component_of(row["pid"])
            polled = cluster.polls(polled_since).get(jobs[0]["jobExecutionId"], [])
            return jobs[0]["status"] == "IN PROGRESS" and len(polled) >= 2 and where[try_number] is not None

        return check

    cluster.wait_until("the task waits for its job in a worker", waiting_in_a_worker(1, since), 120)
    victim = where[1]
    assert victim is not None and victim.startswith("worker-"), where
    killed_at = time.time()
    airflow.kill_component(victim)
    detected_after = cluster.wait_until(
        "the retry waits for the job on the other worker", waiting_in_a_worker(2, killed_at), 180
    )
    (job,) = cluster.jobs_of(run_id)
    cluster.complete([job])
    run = airflow.wait_for_run(WORKER_WAIT, run_id, timeout=120)
    (row,) = cluster.task_rows(WORKER_WAIT, run_id)
    jobs = cluster.jobs_of(run_id)
    initiates = len(cluster.requests("initiate_job", since))
    executes = len(cluster.requests("execute_job", since))
    retry_log = airflow.task_log(WORKER_WAIT, run_id, "run", try_number=2)
    reattached = "Reconnecting to existing job" in retry_log
    recorder.record(
        case=f"worker failover: {victim} SIGKILLed (its whole process tree) while an OpusExecuteJobOperator "
        "waits for its job in it",
        expected="the retry runs on the other worker and reattaches to the same job: one job billed",
        observed=(
            f"try 2 ran on {where[2]}, waiting {detected_after:.0f} s after the kill (task instance heartbeat "
            f"timeout {TASK_HEARTBEAT_TIMEOUT} s); run {run['state']}; {len(jobs)} job, {initiates} initiate and "
            f"{executes} execute call; reattached: {reattached}"
        ),
        passed=(
            run["state"] == "success"
            and row["try_number"] == 2
            and where[2] not in (None, victim)
            and len(jobs) == initiates == executes == 1
            and reattached
        ),
        figures={
            "worker failover: tasks lost": int(run["state"] != "success"),
            "worker failover: jobs billed twice": initiates - 1 + executes - 1,
        },
    )
    assert run["state"] == "success" and row["try_number"] == 2, row
    assert where[2] is not None and where[2] != victim and where[2].startswith("worker-"), where
    assert len(jobs) == initiates == executes == 1, (jobs, initiates, executes)
    assert jobs[0]["jobExecutionId"] == job["jobExecutionId"]
    assert reattached, retry_log[-2000:]


# -- 5. the key in no file ---------------------------------------------------------------------------


def _encoded_forms(secret: str) -> list[str]:
    """
    The secret as it would appear inside base64 at each of the three byte alignments.

    Celery messages sit in Redis with a base64 body: a key inside one would not be found as plain text.
    Only the characters that depend on the secret alone are kept.
    """
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret.encode()).decode()
        forms.append(encoded[4 if offset else 0 : -4])
    return forms


def test_the_key_is_in_no_file_any_component_wrote(cluster: Cluster) -> None:
    recorder = CaseRecorder(CATEGORY)
    airflow = cluster.airflow
    # Database columns as stored values, before the stop (a byte search cannot see into compressed ones).
    columns = airflow.sql(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' "
        "AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea')"
    )
    in_columns = []
    for table, column, data_type in columns:
        if data_type == "bytea":
            where, needle = f'position(%s::bytea IN "{column}") > 0', KEY.encode()
        else:
            where, needle = f'"{column}"::text LIKE %s', f"%{KEY}%"
        if airflow.sql(f'SELECT count(*) FROM "{table}" WHERE {where}', (needle,))[0][0]:
            in_columns.append(f"{table}.{column}")
    # Then stop everything, so every server has written what it holds, and search every byte.
    airflow.stop()
    cluster.emulator.stop()
    assert not airflow.leftovers(), airflow.leftovers()
    files = [path for path in all_files(cluster.root) if "dags" not in path.relative_to(cluster.root).parts[:1]]
    needles = [KEY, *_encoded_forms(KEY)]
    places = {
        "PostgreSQL's data directory (tables, WAL)": [p for p in files if p.is_relative_to(airflow.postgres.dir)],
        "Redis's append-only file (every broker command)": [p for p in files if p.is_relative_to(airflow.redis.dir)],
        "task and trigger logs": [p for p in files if p.is_relative_to(airflow.task_log_dir)],
        "every process's output (all 8 components, servers, emulator)": airflow.component_log_files(),
        "every file under the deployment's folder": files,
    }
    # Positive controls: the search sees what these files hold (a DAG id, in plain text and in base64).
    control = "opus_distributed_load"
    assert files_containing(places["PostgreSQL's data directory (tables, WAL)"], control)
    redis_files = places["Redis's append-only file (every broker command)"]
    assert any(files_containing(redis_files, form) for form in _encoded_forms(control))
    found = {
        place: sorted({p for needle in needles for p in files_containing(paths, needle)})
        for place, paths in places.items()
    }
    for place, paths in places.items():
        recorder.record(
            case=f"the service key in {place}",
            expected="no occurrence (plain or base64)",
            observed=f"{len(found[place])} of {len(paths)} files ({sum(p.stat().st_size for p in paths) // 1024} KiB)",
            passed=not found[place],
            figures={f"key: files holding it ({place})": len(found[place])},
        )
    recorder.record(
        case="the service key in the metadata database's text, JSON and binary columns",
        expected="no occurrence",
        observed=f"{len(in_columns)} of {len(columns)} columns",
        passed=not in_columns,
        figures={"key: database columns holding it": len(in_columns)},
    )
    assert {place: paths for place, paths in found.items() if paths} == {}
    assert in_columns == []
