"""
A distributed Airflow on this machine: PostgreSQL, Redis, the CeleryExecutor, and two of each.

:class:`DistributedDeployment` extends :class:`~tests.support.deployment.AirflowDeployment` (the
same REST API helpers, environment and stop order) with a metadata database in a throwaway
PostgreSQL cluster (:class:`PostgresServer`) and a Celery broker in a Redis server
(:class:`RedisServer`), both on free loopback ports. It runs the api-server, one dag-processor,
two schedulers, two triggerers and two Celery workers (``worker-1@<host>``, ``worker-2@<host>``),
each its own :class:`~tests.support.processes.ManagedProcess` with its pid file. Schedulers,
triggerers and workers start with ``--skip-serve-logs``: their log servers bind fixed ports on
every interface, so a second one on the host would fail to start; the api-server reads the log
files from the shared folder instead.

The servers come from Debian's ``postgresql`` and ``redis-server`` packages (``make
e2e-distributed`` installs them); the Python side from the ``distributed`` extra. Run as root (as
CI does), the cluster belongs to the ``postgres`` user, as ``initdb`` refuses root: ``initdb`` and
the server run through ``runuser -u postgres --``.

Everything lives in one folder, made by :func:`make_root` (``/tmp/airflow-opus-distributed-*``)::

    root/airflow/     AIRFLOW_HOME
    root/postgres/    the cluster (data/) and its Unix socket (socket/)
    root/redis/       Redis's append-only file: every command the broker was sent
    root/logs/        one <component>.log per process; Airflow's task and trigger logs in tasks/
    root/pids/        one <component>.pid per running process, and ``owner``: the run that started them

It is not under pytest's temp folder, which only its user may enter: the ``postgres`` user must
reach its cluster. :func:`stop_abandoned` stops what earlier runs left running when they were
killed before they could stop it (their ``owner`` is gone), with
:func:`~tests.support.processes.stop_recorded`, which looks for :data:`MARKERS` in each recorded
process's command line: "airflow" in every component's and (through the folder's name) the servers',
"[celeryd: " in a Celery worker's, which renames itself.

Usage (``tests/distributed``)::

    root = make_root()
    with EmulatorProcess(root, service_key="k", api="legacy") as emulator, DistributedDeployment(
        root, dags_folder, env={"AIRFLOW_CONN_OPUS_DEFAULT": emulator.connection_json()}
    ) as airflow:
        airflow.start()
        airflow.kill_component("triggerer-1")  # a lost machine: SIGKILL to its whole process tree
        airflow.sql("SELECT triggerer_id, count(*) FROM trigger GROUP BY 1")
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import requests

from tests.support.deployment import AirflowDeployment
from tests.support.processes import (
    DEFAULT_GRACE,
    DeploymentError,
    ManagedProcess,
    free_port,
    log_tail,
    stop_all,
    stop_recorded,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

COMPONENTS = (
    "api-server",
    "dag-processor",
    "worker-1",
    "worker-2",
    "scheduler-1",
    "triggerer-1",
    "scheduler-2",
    "triggerer-2",
)
"""The Airflow components of a distributed deployment, each its own process, in start order."""

ROOT_PREFIX = "airflow-opus-distributed-"
"""The name of every deployment folder starts so; "airflow" in it lets stop_recorded find the servers."""

#: What the command line of each recorded process holds: "airflow" (a Celery worker's main process
#: renames itself ``[celeryd: worker-1@host:MainProcess] ...``).
MARKERS = ("airflow", "[celeryd: ")

#: Scheduler, triggerer and Celery worker processes: ``<kind>-<n>``.
_NUMBERED = re.compile(r"^(scheduler|triggerer|worker)-\d+$")
#: The job type a component's row in Airflow's ``job`` table has.
JOB_TYPES = {"scheduler": "SchedulerJob", "triggerer": "TriggererJob"}


# -- the folder --------------------------------------------------------------------------------------


def make_root() -> Path:
    """Create a deployment folder under the system temp folder, recording this process as its owner."""
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX)).resolve()
    root.chmod(0o711)  # the postgres user may pass through to its cluster, not list the folder
    (root / "pids").mkdir()
    (root / "pids" / "owner").write_text(f"{os.getpid()} {psutil.Process().create_time()}\n")
    return root


def stop_abandoned(grace: float = 10.0) -> list[int]:
    """
    Stop the processes of earlier deployments whose owner no longer runs (a killed test run).

    A deployment whose owner still runs is left alone, even another user's test run.

    :return: the pids that were stopped.
    """
    stopped: list[int] = []
    for pid_dir in Path(tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*/pids"):
        if not _owner_running(pid_dir / "owner"):
            stopped += stop_recorded(pid_dir, grace, MARKERS)
    return stopped


def _owner_running(owner_file: Path) -> bool:
    try:
        pid, created = owner_file.read_text().split()
        return abs(psutil.Process(int(pid)).create_time() - float(created)) < 1.0
    except (OSError, ValueError, psutil.Error):
        return False


# -- servers ----------------------------------------------------------------------------------------


def postgres_bin() -> Path:
    """The bin folder of the newest PostgreSQL server installed from Debian's packages."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise DeploymentError(
            "PostgreSQL's server is not installed: apt-get install -y postgresql (make e2e-distributed does)"
        )
    return found[-1].parent


class PostgresServer:
    """
    A throwaway PostgreSQL cluster: ``initdb`` into ``<root>/postgres/data``, the server on 127.0.0.1.

    Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the cluster
    lives as long as one test run. Its socket is in ``<root>/postgres/socket``, not a system path.

    :param root: the deployment folder.
    :param port: the TCP port; 0 picks a free one.
    """

    user = "airflow"
    database = "airflow"

    def __init__(self, root: Path, port: int = 0) -> None:
        self.dir = root / "postgres"
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "socket"
        self.port = port or free_port()
        self.password = secrets.token_hex(16)
        self.bin = postgres_bin()
        # initdb and the server refuse to run as root: run as the postgres user then.
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        argv = [
            *self._as_owner,
            str(self.bin / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            *("-c", "listen_addresses=127.0.0.1"),
            *("-c", "max_connections=200"),
            *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
        ]
        self.process = ManagedProcess("postgres", argv, _plain_env(), root / "logs", root / "pids", root)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Airflow connects with (psycopg 3)."""
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def connect(self, database: str | None = None) -> Any:
        """A new psycopg connection (autocommit) to the Airflow database, or to ``database``."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            autocommit=True,
            connect_timeout=5,
        )

    def start(self, timeout: float = 60.0) -> None:
        """Create the cluster, start the server, wait until it accepts connections, create the database."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        password_file = self.dir / "initdb-password"
        password_file.write_text(self.password + "\n")
        if self._as_owner:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
            shutil.chown(password_file, "postgres", "postgres")
        initdb = [
            *self._as_owner,
            str(self.bin / "initdb"),
            *("-D", str(self.data), "-U", self.user, "-E", "UTF8", "--no-instructions"),
            *("--auth", "scram-sha-256", "--pwfile", str(password_file)),
        ]
        try:
            result = subprocess.run(initdb, env=_plain_env(), capture_output=True, text=True, timeout=120, check=False)
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise DeploymentError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        self.process.start()
        deadline = time.monotonic() + timeout
        while True:
            if not self.process.alive():
                raise DeploymentError(f"PostgreSQL exited:\n{log_tail(self.process.log_path)}")
            try:
                with self.connect("postgres") as conn:
                    conn.execute(f"CREATE DATABASE {self.database}")
                return
            except Exception as exc:  # psycopg.OperationalError until the server accepts connections
                if time.monotonic() > deadline:
                    raise DeploymentError(
                        f"PostgreSQL did not accept connections within {timeout:.0f} s: {exc}"
                    ) from exc
            time.sleep(0.2)


class RedisServer:
    """
    Redis on 127.0.0.1, appending every write to ``<root>/redis`` (so a test can search what it was sent).

    ``--set-proc-title no`` keeps its command line (with the folder's name) as started.

    :param root: the deployment folder.
    :param port: the TCP port; 0 picks a free one.
    """

    def __init__(self, root: Path, port: int = 0) -> None:
        self.dir = root / "redis"
        self.port = port or free_port()
        executable = shutil.which("redis-server")
        if executable is None:
            raise DeploymentError(
                "redis-server is not installed: apt-get install -y redis-server (make e2e-distributed does)"
            )
        argv = [
            executable,
            *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir)),
            *("--save", "", "--appendonly", "yes", "--set-proc-title", "no"),
        ]
        self.process = ManagedProcess("redis", argv, _plain_env(), root / "logs", root / "pids", root)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it answers PING."""
        import redis

        self.dir.mkdir(parents=True, exist_ok=True)
        self.process.start()
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if not self.process.alive():
                    raise DeploymentError(f"Redis exited:\n{log_tail(self.process.log_path)}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise DeploymentError(f"Redis did not answer within {timeout:.0f} s") from None
                time.sleep(0.1)
        finally:
            client.close()


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "OPUS_"))}


# -- Airflow ----------------------------------------------------------------------------------------


class DistributedDeployment(AirflowDeployment):
    """
    Airflow 3 on PostgreSQL and Redis with the CeleryExecutor: two schedulers, triggerers and workers.

    :param root: the deployment folder (see :func:`make_root`).
    :param dags_folder: the DAGs folder (read only).
    :param env: extra environment for every component, laid over the deployment's settings.
    :param worker_concurrency: task slots of each Celery worker.
    :param python: the interpreter with Airflow, the provider and the ``distributed`` extra.
    """

    def __init__(
        self,
        root: Path,
        dags_folder: Path,
        *,
        env: Mapping[str, str] | None = None,
        worker_concurrency: int = 8,
        python: str = sys.executable,
    ) -> None:
        root = Path(root).resolve()
        self.postgres = PostgresServer(root)
        self.redis = RedisServer(root)
        self.worker_concurrency = worker_concurrency
        settings = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
            # Celery's database result backend takes a SQLAlchemy URL behind "db+".
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.postgres.url}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
        }
        super().__init__(root, dags_folder, env={**settings, **(env or {})}, python=python)
        #: Components killed on purpose (:meth:`kill_component`): no longer checked, still stopped and counted.
        self.lost: dict[str, ManagedProcess] = {}
        #: The ``job`` table id of each scheduler and triggerer, known once it has started.
        self.job_ids: dict[str, int] = {}

    def _argv(self, component: str) -> list[str]:
        airflow = [self.python, "-m", "airflow"]
        if not _NUMBERED.match(component):
            return super()._argv(component)
        kind = component.rsplit("-", 1)[0]
        if kind == "worker":
            # Two workers on one host need distinct Celery node names.
            return [
                *(*airflow, "celery", "worker", "--celery-hostname", f"{component}@%h"),
                *("--concurrency", str(self.worker_concurrency), "--skip-serve-logs"),
            ]
        return [*airflow, kind, "--skip-serve-logs"]

    # Lifecycle ----------------------------------------------------------------------------------

    def start(self, components: Iterable[str] = COMPONENTS, timeout: float = 180.0) -> None:
        """
        Start PostgreSQL and Redis, migrate, start the components and wait until all are healthy.

        Each scheduler and triggerer starts once the one before it of its kind has its ``job`` row,
        so :attr:`job_ids` knows which process each row is.
        """
        deadline = time.monotonic() + timeout
        self.postgres.start()
        self.redis.start()
        self.migrate()
        for component in components:
            kind = component.rsplit("-", 1)[0] if _NUMBERED.match(component) else component
            if kind in JOB_TYPES:
                self._wait_for_job_ids(kind, deadline)
            self.start_component(component)
        for kind in JOB_TYPES:
            self._wait_for_job_ids(kind, deadline)
        self.wait_until_healthy(max(1.0, deadline - time.monotonic()))

    def _wait_for_job_ids(self, kind: str, deadline: float) -> None:
        """Give every started ``kind`` component its job id; they started one at a time, in order."""
        pending = [name for name in self.processes if name.startswith(f"{kind}-") and name not in self.job_ids]
        while pending:
            self.check_alive()
            rows = self.sql(
                "SELECT id FROM job WHERE job_type = %s AND state = 'running' ORDER BY id", (JOB_TYPES[kind],)
            )
            new = [row[0] for row in rows if row[0] not in self.job_ids.values()]
            if len(new) > len(pending):
                raise DeploymentError(f"more running {JOB_TYPES[kind]} rows than started {kind}s: {new}")
            for name, job_id in zip(pending, new, strict=False):  # new may be shorter
                self.job_ids[name] = int(job_id)
            pending = pending[len(new) :]
            if pending and time.monotonic() > deadline:
                raise DeploymentError(f"{', '.join(pending)} did not register within the start timeout")
            if pending:
                time.sleep(0.3)

    def wait_until_healthy(self, timeout: float = 120.0) -> None:
        """
        Wait until the REST API reports the scheduler, triggerer and dag-processor healthy, each scheduler
        and triggerer heartbeats, and each Celery worker has said it is ready.
        """
        deadline = time.monotonic() + timeout
        waiting: list[str] = ["api-server"]
        while True:
            self.check_alive()
            self.snapshot()
            try:
                health = self.health()
            except (requests.RequestException, DeploymentError):
                health = {}
            kinds = ("scheduler", "triggerer", "dag_processor")
            waiting = [kind for kind in kinds if (health.get(kind) or {}).get("status") != "healthy"]
            beating = self.heartbeating()
            waiting += [name for name in self.job_ids if name in self.processes and name not in beating]
            waiting += [name for name in self.processes if name.startswith("worker-") and not self.worker_ready(name)]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise DeploymentError(f"not healthy within {timeout:.0f} s: {', '.join(waiting)}")
            time.sleep(0.5)

    def heartbeating(self, within: float = 30.0) -> set[str]:
        """The schedulers and triggerers whose job row has a heartbeat from the last ``within`` seconds."""
        rows = self.sql(
            "SELECT id FROM job WHERE state = 'running' AND latest_heartbeat > now() - make_interval(secs => %s)",
            (within,),
        )
        alive = {row[0] for row in rows}
        return {name for name, job_id in self.job_ids.items() if job_id in alive}

    def worker_ready(self, name: str) -> bool:
        """Whether a Celery worker has said it is ready (``worker-1@<host> ready.``) in its output."""
        text = self.processes[name].log_path.read_text(errors="replace")
        return re.search(rf"\b{re.escape(name)}@\S+ ready\.", text) is not None

    def kill_component(self, name: str, timeout: float = 30.0) -> list[int]:
        """
        SIGKILL a component's whole process tree at once, as if its machine were lost.

        The component is no longer checked by :meth:`check_alive`; :meth:`leftovers` still counts it.

        :return: the pids killed.
        """
        process = self.processes.pop(name)
        self.lost[name] = process
        tree = process.snapshot()
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        process.finish(time.monotonic() + timeout)
        return [proc.pid for proc in tree]

    def component_of(self, pid: int) -> str | None:
        """The running component whose process tree holds ``pid``, or None."""
        for name, process in self.processes.items():
            if any(proc.pid == pid for proc in process.snapshot()):
                return name
        return None

    def stop(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop the Airflow components (the api-server last), then Redis and PostgreSQL."""
        super().stop(grace)
        stop_all([*self.lost.values()], grace)
        stop_all([self.redis.process], grace)
        stop_all([self.postgres.process], grace)

    def _all_processes(self) -> list[ManagedProcess]:
        return [*self.processes.values(), *self.lost.values(), self.redis.process, self.postgres.process]

    def snapshot(self) -> None:
        for process in self._all_processes():
            process.snapshot()

    def leftovers(self) -> list[psutil.Process]:
        return [proc for process in self._all_processes() for proc in process.leftovers()]

    def seen_pids(self) -> set[int]:
        return {pid for process in self._all_processes() for pid in process.seen}

    def __enter__(self) -> DistributedDeployment:
        return self

    # Metadata database --------------------------------------------------------------------------

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one query on Airflow's metadata database and return its rows."""
        with self.postgres.connect() as conn:
            cursor = conn.execute(query, params)
            return list(cursor.fetchall()) if cursor.description else []
