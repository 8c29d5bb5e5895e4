"""
A real Airflow deployment on this machine, and the Opus emulator beside it, for demos and tests.

:class:`AirflowDeployment` runs ``airflow db migrate`` and then the api-server, scheduler,
dag-processor and triggerer, each as its own process (SQLite, LocalExecutor, loopback only,
a free port picked at run time), and drives it through the REST API at ``/api/v2``:
trigger a DAG, follow a run, read XComs and task logs. :class:`EmulatorProcess` runs
``python -m airflow_provider_opus.emulator`` the same way.

Every file lives under one folder (``root``)::

    root/airflow/      AIRFLOW_HOME: airflow.db, airflow.cfg
    root/logs/         one <component>.log per process (its stdout and stderr)
    root/logs/tasks/   Airflow's task and trigger logs
    root/pids/         one <component>.pid per running process

Each process starts in a session of its own, so Ctrl+C in a terminal reaches only the
script that started it, which then stops them: SIGTERM to each component (the api-server
last), a second SIGTERM to it and its children after 3 s, SIGKILL to their children after 6 s
and to whatever of its process tree is left after the grace period. Every process of each
tree is remembered, so :meth:`AirflowDeployment.leftovers` can tell that none outlived the
stop. :func:`stop_recorded` stops the processes that the pid files of a crashed earlier run
still name.

Used by ``make demo`` (``scripts/demo.py``), ``tests/e2e`` and the reliability suite::

    with EmulatorProcess(root, service_key="k", job_duration=5) as emulator, AirflowDeployment(
        root, dags_folder, env={"AIRFLOW_CONN_OPUS_DEFAULT": emulator.connection_json()}
    ) as airflow:
        airflow.start()
        run_id = airflow.trigger("opus_document_review")
        run = airflow.wait_for_run("opus_document_review", run_id, timeout=120)
        airflow.stop_component("triggerer")  # a reliability test can kill and restart a component
        airflow.start_component("triggerer")

Nothing here prints or logs the environment: connection strings with service keys pass
through it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psutil
import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
"""The Airflow components a deployment runs, each as its own process."""

FINISHED_RUN_STATES = frozenset({"success", "failed"})
DEFAULT_GRACE = 15.0
"""Seconds a process gets to exit after SIGTERM before it is killed."""

SECOND_SIGNAL_AFTER = 3.0
"""Seconds an Airflow component gets after SIGTERM before a second one tells it to stop waiting."""

_LOG_TAIL_LINES = 40
_REQUIRED: Any = object()


class DeploymentError(RuntimeError):
    """A process did not start, died, or did not become healthy; the message carries its log tail."""


# -- processes ------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """
    One long-running process: started in its own session, output to a log file, pid in a pid file.

    :param name: short name, used for the log and pid file names.
    :param argv: the command.
    :param env: its whole environment.
    :param log_dir: folder of ``<name>.log``.
    :param pid_dir: folder of ``<name>.pid``.
    :param cwd: working directory.
    """

    def __init__(
        self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path, pid_dir: Path, cwd: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.pid_file = pid_dir / f"{name}.pid"
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        #: Every process of its tree seen so far, to check that none outlives stop().
        self.seen: dict[int, psutil.Process] = {}
        #: The pids that stopping it had to SIGKILL.
        self.killed: list[int] = []

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.popen.pid

    def start(self) -> None:
        """Start the process; it writes to its log file (appending) and has no stdin."""
        if self.popen is not None and self.popen.poll() is None:
            raise RuntimeError(f"{self.name} is already running (pid {self.popen.pid})")
        self.killed = []
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl+C in the terminal reaches only our script, which stops us
            )
        self.pid_file.write_text(f"{self.popen.pid}\n")
        self.snapshot()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def snapshot(self) -> list[psutil.Process]:
        """The running processes of its tree (it and its descendants), remembered for :meth:`leftovers`."""
        if self.popen is None:
            return []
        try:
            leader = psutil.Process(self.popen.pid)
            tree = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for proc in tree:
            self.seen.setdefault(proc.pid, proc)
        return tree

    def leftovers(self) -> list[psutil.Process]:
        """Processes of its tree ever seen that still run (a pid reused by another process does not count)."""
        return [proc for proc in self.seen.values() if _running(proc)]

    def send_term(self, tree: bool = False) -> None:
        """
        SIGTERM to the process, which stops its own children.

        :param tree: to its descendants as well, for a process that waits on children that do not end.
        """
        procs = self.snapshot()
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGTERM)
        for proc in procs[1:] if tree else []:
            with contextlib.suppress(psutil.Error):
                proc.terminate()

    def kill_descendants(self) -> None:
        """SIGKILL its descendants (not itself), e.g. children it waits for that do not end."""
        for proc in self.snapshot()[1:]:
            with contextlib.suppress(psutil.Error):
                self.killed.append(proc.pid)
                proc.kill()

    def finish(self, deadline: float) -> None:
        """Wait for the tree until ``deadline`` (monotonic), then SIGKILL what is left; remove the pid file."""
        if self.popen is not None:
            self.snapshot()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            # psutil's wait would reap our own child behind Popen's back (its returncode would read 0),
            # so it waits only for the descendants.
            psutil.wait_procs(self._descendants(self.leftovers()), timeout=max(0.0, deadline - time.monotonic()))
            leftovers = self.leftovers()
            for proc in leftovers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    self.killed.append(proc.pid)
                    proc.kill()
            if leftovers:
                _kill_group(self.popen.pid)  # and anything started since the last snapshot
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
            psutil.wait_procs(self._descendants(self.seen.values()), timeout=5)
        self.pid_file.unlink(missing_ok=True)

    def _descendants(self, procs: Iterable[psutil.Process]) -> list[psutil.Process]:
        return [proc for proc in procs if self.popen is None or proc.pid != self.popen.pid]

    def stop(self, grace: float = DEFAULT_GRACE) -> None:
        """SIGTERM, then SIGKILL to its whole tree after ``grace`` seconds."""
        self.send_term()
        self.finish(time.monotonic() + grace)


def stop_all(processes: Iterable[ManagedProcess], grace: float = DEFAULT_GRACE, patience: float | None = None) -> None:
    """
    Stop several processes at once: SIGTERM to each, one shared grace period, then SIGKILL.

    :param patience: if given, a process still running after this many seconds gets a second
        SIGTERM and so do its descendants; descendants still running after twice as long are
        SIGKILLed. Airflow's scheduler and triggerer wait for children (the LocalExecutor's
        workers, the trigger runner) that sometimes do not end on their own, and would otherwise
        hold the stop up for the whole grace period.
    """
    procs = list(processes)
    for proc in procs:
        proc.send_term()
    started = time.monotonic()

    def wait_until(moment: float) -> None:
        while any(proc.alive() for proc in procs) and time.monotonic() < moment:
            time.sleep(0.05)

    if patience is not None and 2 * patience < grace:
        wait_until(started + patience)
        for proc in procs:
            if proc.alive():
                proc.send_term(tree=True)
        wait_until(started + 2 * patience)
        for proc in procs:
            if proc.alive():
                proc.kill_descendants()
    deadline = started + grace
    for proc in procs:
        proc.finish(deadline)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_group(pgid: int) -> None:
    # The process started a session, so its pid is its group id: SIGKILL whatever is still in it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def stop_recorded(pid_dir: Path, grace: float = DEFAULT_GRACE, marker: str = "airflow") -> list[int]:
    """
    Stop the processes named by pid files of an earlier run that did not clean up (say, it was SIGKILLed).

    A pid counts only while its process group still exists and its command line contains
    ``marker``, so a pid that another program has reused since is left alone.

    :return: the pids that were stopped.
    """
    stopped = []
    for pid_file in sorted(pid_dir.glob("*.pid")) if pid_dir.is_dir() else []:
        try:
            pid = int(pid_file.read_text().split()[0])
            proc = psutil.Process(pid)
            if marker in " ".join(proc.cmdline()) and os.getpgid(pid) == pid:
                procs = [proc, *proc.children(recursive=True)]
                os.kill(pid, signal.SIGTERM)
                _, alive = psutil.wait_procs(procs, timeout=grace)
                for leftover in alive:
                    leftover.kill()
                _kill_group(pid)
                stopped.append(pid)
        except (ValueError, IndexError, psutil.Error, ProcessLookupError):
            pass
        pid_file.unlink(missing_ok=True)
    return stopped


# -- the emulator -----------------------------------------------------------------------------------


class EmulatorProcess:
    """
    ``python -m airflow_provider_opus.emulator`` on a free loopback port, its key passed in the environment.

    :param root: the folder of ``logs/`` and ``pids/``.
    :param service_key: the key it accepts; given in ``OPUS_EMULATOR_SERVICE_KEY``, never on the command line.
    :param job_duration: seconds an emulated job runs.
    :param python: the interpreter that has the provider installed.
    """

    def __init__(self, root: Path, service_key: str, job_duration: float = 1.0, python: str = sys.executable) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "OPUS_"))}
        env["OPUS_EMULATOR_SERVICE_KEY"] = service_key
        env["PYTHONUNBUFFERED"] = "1"
        argv = [python, "-m", "airflow_provider_opus.emulator", "--port", "0", "--job-duration", str(job_duration)]
        self.service_key = service_key
        self.process = ManagedProcess("opus-emulator", argv, env, root / "logs", root / "pids", root)
        self.url = ""

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        """Start it and wait for its banner, which names the API URL."""
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"Opus emulator API:\s+(http://\S+)", _read(self.process.log_path))
            if match:
                self.url = match.group(1)
                self._wait_healthy(deadline)
                return self
            if not self.process.alive():
                break
            time.sleep(0.1)
        self.stop()
        raise DeploymentError(f"The Opus emulator did not start:\n{log_tail(self.process.log_path)}")

    def _wait_healthy(self, deadline: float) -> None:
        while True:
            try:
                if requests.get(f"{self.url}/_emulator/health", timeout=2).ok:
                    return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def stop(self, grace: float = DEFAULT_GRACE) -> None:
        self.process.stop(grace)

    def connection_json(self) -> str:
        """The value of ``AIRFLOW_CONN_OPUS_DEFAULT`` that points Airflow at this emulator."""
        return json.dumps({"conn_type": "opus", "host": self.url, "password": self.service_key})

    def admin(self, method: str, route: str, **kwargs: Any) -> Any:
        """Call an admin route (``/_emulator/<route>``), e.g. ``admin("GET", "jobs")["jobs"]``."""
        response = requests.request(method, f"{self.url}/_emulator/{route}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def jobs(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "jobs")["jobs"])

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# -- Airflow ----------------------------------------------------------------------------------------


class AirflowDeployment:
    """
    A local Airflow 3 deployment: SQLite, LocalExecutor, api-server on a free loopback port.

    The components share one environment, built from scratch: inherited ``AIRFLOW*`` and
    ``OPUS_*`` variables are dropped (a test process's ``AIRFLOW__CORE__UNIT_TEST_MODE``, a user's
    own connections and keys), then ``env`` is laid over the deployment's settings.
    ``SIMPLE_AUTH_MANAGER_ALL_ADMINS`` makes everyone an admin, so the REST API and the UI need no
    login: fine on loopback, never elsewhere.

    :param root: folder for everything the deployment writes.
    :param dags_folder: the DAGs folder (read only).
    :param env: extra environment for every component, e.g. ``AIRFLOW_CONN_OPUS_DEFAULT``.
    :param host: interface of the api-server.
    :param port: api-server port; 0 picks a free one.
    :param python: the interpreter with Airflow and the provider installed.
    """

    def __init__(
        self,
        root: Path,
        dags_folder: Path,
        *,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        python: str = sys.executable,
    ) -> None:
        self.root = Path(root).resolve()
        self.home = self.root / "airflow"
        self.log_dir = self.root / "logs"
        self.task_log_dir = self.log_dir / "tasks"
        self.pid_dir = self.root / "pids"
        self.dags_folder = Path(dags_folder).resolve()
        self.python = python
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.env = self._environment(env or {})
        self.processes: dict[str, ManagedProcess] = {}
        self._http = requests.Session()
        self._http.headers["Accept"] = "application/json"

    def _environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "OPUS_"))}
        fernet_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__FERNET_KEY": fernet_key,
                "AIRFLOW__CORE__PARALLELISM": "8",  # LocalExecutor forks this many workers at start
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__HOST": self.host,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.task_log_dir),
                "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(self.log_dir / "dag-processor"),
                # Report state changes quickly: these are loopback processes on one machine.
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                # A task supervisor can take this long to notice its task exited. Meanwhile a trigger that
                # fires at once gets the task requeued, and Airflow 3.3.2 then fails it on the late "success"
                # of the deferral (apache/airflow#67287, fixed after 3.3.2 by #68741). 1 s narrows the window.
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    # Lifecycle ----------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create the metadata database (``airflow db migrate``)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / "db-migrate.log"
        with open(log_path, "ab") as log:
            result = subprocess.run(
                [self.python, "-m", "airflow", "db", "migrate"],
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        if result.returncode != 0:
            raise DeploymentError(f"airflow db migrate failed ({result.returncode}):\n{log_tail(log_path)}")

    def _argv(self, component: str) -> list[str]:
        airflow = [self.python, "-m", "airflow"]
        if component == "api-server":
            return [*airflow, "api-server", "--host", self.host, "--port", str(self.port), "--workers", "1"]
        if component in ("scheduler", "triggerer"):
            # Their log servers listen on every interface at fixed ports; the api-server reads the
            # log files directly, as every process shares this machine's disk.
            return [*airflow, component, "--skip-serve-logs"]
        if component == "dag-processor":
            return [*airflow, component]
        raise ValueError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")

    def start(self, components: Iterable[str] = COMPONENTS, timeout: float = 120.0) -> None:
        """Migrate the database, start the components and wait until they are healthy."""
        if not (self.home / "airflow.db").exists():
            self.migrate()
        for component in components:
            self.start_component(component)
        self.wait_until_healthy(timeout)

    def start_component(self, component: str) -> ManagedProcess:
        """Start (or restart) one component; do not wait for it."""
        process = self.processes.get(component)
        if process is None:
            process = ManagedProcess(component, self._argv(component), self.env, self.log_dir, self.pid_dir, self.root)
            self.processes[component] = process
        process.start()
        return process

    def stop_component(self, component: str, grace: float = DEFAULT_GRACE, sig: int = signal.SIGTERM) -> None:
        """
        Stop one component: ``sig`` (SIGTERM by default; SIGKILL to crash it), then SIGKILL after ``grace``.
        """
        process = self.processes[component]
        if sig == signal.SIGTERM:
            stop_all([process], grace, SECOND_SIGNAL_AFTER)
            return
        process.snapshot()
        if process.alive():
            os.kill(process.pid, sig)
        process.finish(time.monotonic() + grace)

    def stop(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop every component that was started, all at once (SIGTERM, SIGKILL after ``grace``)."""
        self._http.close()  # an open keep-alive connection would hold up the api-server's shutdown
        # The api-server goes last: running tasks report their end to it through the execution API,
        # and without it a scheduler waits for its workers until they are killed.
        stop_all([proc for name, proc in self.processes.items() if name != "api-server"], grace, SECOND_SIGNAL_AFTER)
        stop_all([proc for name, proc in self.processes.items() if name == "api-server"], grace, SECOND_SIGNAL_AFTER)

    def snapshot(self) -> None:
        """Remember the current process trees, so :meth:`leftovers` knows about short-lived children too."""
        for process in self.processes.values():
            process.snapshot()

    def leftovers(self) -> list[psutil.Process]:
        """Processes of the deployment ever seen that still run: empty after a clean :meth:`stop`."""
        return [proc for process in self.processes.values() for proc in process.leftovers()]

    def seen_pids(self) -> set[int]:
        return {pid for process in self.processes.values() for pid in process.seen}

    def __enter__(self) -> AirflowDeployment:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def check_alive(self) -> None:
        """Raise :class:`DeploymentError`, with its log tail, if a started component has exited."""
        for name, process in self.processes.items():
            code = process.returncode()
            if code is not None:
                raise DeploymentError(f"Airflow {name} exited with code {code}:\n{log_tail(process.log_path)}")

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health``."""
        return dict(self.api("GET", "/monitor/health"))

    def wait_until_healthy(self, timeout: float = 120.0) -> None:
        """Wait until the api-server answers and every started component reports healthy."""
        deadline = time.monotonic() + timeout
        wanted = {"scheduler", "triggerer", "dag-processor"} & set(self.processes)
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.check_alive()
            self.snapshot()
            try:
                health = self.health()
            except (requests.RequestException, DeploymentError):
                time.sleep(0.5)
                continue
            statuses = {name: (health.get(name.replace("-", "_")) or {}).get("status") for name in wanted}
            if all(status == "healthy" for status in statuses.values()):
                return
            time.sleep(0.5)
        raise DeploymentError(f"Airflow did not become healthy within {timeout:.0f} s: {health}")

    # REST API -----------------------------------------------------------------------------------

    def api(self, method: str, path: str, *, timeout: float = 30.0, **kwargs: Any) -> Any:
        """
        Call ``/api/v2<path>`` and return the decoded JSON body (None when empty).

        :raises DeploymentError: for an error status, with the response text.
        """
        response = self._http.request(method, f"{self.url}/api/v2{path}", timeout=timeout, **kwargs)
        if not response.ok:
            raise DeploymentError(f"{method} /api/v2{path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; fail at once on an import error."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                return dict(self.api("GET", f"/dags/{quote(dag_id)}"))
            except DeploymentError:
                errors = self.api("GET", "/importErrors").get("import_errors") or []
                if errors:
                    details = "\n".join(f"{e.get('filename')}: {e.get('stack_trace')}" for e in errors)
                    raise DeploymentError(f"DAG import errors:\n{details}") from None
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{quote(dag_id)}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, *, timeout: float = 60.0) -> str:
        """Wait for the DAG to be parsed, unpause it and start a run now; return its run id."""
        self.wait_for_dag(dag_id, timeout)
        self.unpause(dag_id)
        body = {"logical_date": dt.datetime.now(dt.timezone.utc).isoformat(), "conf": dict(conf or {})}
        run = self.api("POST", f"/dags/{quote(dag_id)}/dagRuns", json=body)
        return str(run["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}"))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/dags/{quote(dag_id)}/dagRuns", params={"limit": 100})["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances"
        return list(self.api("GET", path, params={"limit": 1000})["task_instances"])

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        timeout: float = 300.0,
        *,
        poll: float = 1.0,
        on_change: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> dict[str, Any]:
        """
        Poll a run until it succeeds or fails.

        :param on_change: called with the task instances whenever a task's state changes.
        :return: the finished run.
        :raises DeploymentError: on timeout, or if a component died meanwhile.
        """
        deadline = time.monotonic() + timeout
        last: dict[tuple[str, int], str | None] = {}
        while True:
            self.check_alive()
            self.snapshot()
            run = self.dag_run(dag_id, run_id)
            if on_change is not None:
                tis = self.task_instances(dag_id, run_id)
                states = {(ti["task_id"], ti.get("map_index", -1)): ti.get("state") for ti in tis}
                if states != last:
                    last = states
                    on_change(tis)
            if run.get("state") in FINISHED_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                raise DeploymentError(f"{dag_id} run {run_id} still {run.get('state')} after {timeout:.0f} s")
            time.sleep(poll)

    def wait_for_new_run(self, dag_id: str, known: Iterable[str] = (), timeout: float = 60.0) -> str:
        """Wait for a run of ``dag_id`` not in ``known`` to appear (e.g. one an asset event scheduled)."""
        deadline = time.monotonic() + timeout
        known = set(known)
        while True:
            self.check_alive()
            for run in self.dag_runs(dag_id):
                if run["dag_run_id"] not in known:
                    return str(run["dag_run_id"])
            if time.monotonic() > deadline:
                raise DeploymentError(f"No new run of {dag_id} within {timeout:.0f} s")
            time.sleep(0.5)

    def xcom(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        key: str = "return_value",
        map_index: int = -1,
        default: Any = _REQUIRED,
    ) -> Any:
        """
        An XCom value, as JSON.

        :param default: returned when there is no such XCom; without it, that raises :class:`DeploymentError`.
        """
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/xcomEntries/{quote(key)}"
        response = self._http.get(
            f"{self.url}/api/v2{path}", params={"map_index": map_index, "deserialize": True}, timeout=30
        )
        if response.status_code == 404 and default is not _REQUIRED:
            return default
        if not response.ok:
            raise DeploymentError(f"GET /api/v2{path}: {response.status_code} {response.text[:500]}")
        value = response.json()["value"]
        # The API hands stored JSON back as a string; values it deserialised come back as they are.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def task_errors(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> list[str]:
        """The exceptions a task's log records, as ``ExceptionType: message``, innermost last."""
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/logs/{try_number}"
        body = self.api("GET", path, params={"map_index": map_index, "full_content": True})
        errors = []
        for entry in body.get("content") or []:
            details = entry.get("error_detail") if isinstance(entry, dict) else None
            for detail in details if isinstance(details, list) else []:
                if isinstance(detail, dict):
                    errors.append(f"{detail.get('exc_type')}: {detail.get('exc_value')}")
        return errors

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """A task's log as the UI shows it, one line per entry (``timestamp level event key=value...``)."""
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/logs/{try_number}"
        body = self.api("GET", path, params={"map_index": map_index, "full_content": True})
        lines = []
        for entry in body.get("content") or []:
            if not isinstance(entry, dict):
                lines.append(str(entry))
                continue
            fields = dict(entry)
            head = [str(fields.pop(name, "") or "") for name in ("timestamp", "level", "event")]
            lines.append(" ".join([*head, *(f"{key}={value}" for key, value in fields.items())]))
        return "\n".join(lines)

    # Files --------------------------------------------------------------------------------------

    def task_log_files(self, dag_id: str | None = None) -> list[Path]:
        """Task and trigger log files written so far, of one DAG or of all."""
        base = self.task_log_dir / f"dag_id={dag_id}" if dag_id else self.task_log_dir
        return sorted(path for path in base.rglob("*.log") if path.is_file()) if base.exists() else []

    def component_log_files(self) -> list[Path]:
        """The output of every process this deployment started (and of ``airflow db migrate``)."""
        return sorted(self.log_dir.glob("*.log"))


def files_containing(paths: Iterable[Path], secret: str) -> list[Path]:
    """The files among ``paths`` whose bytes contain ``secret``."""
    needle = secret.encode()
    found = []
    for path in paths:
        try:
            if needle in path.read_bytes():
                found.append(path)
        except OSError:
            continue
    return found


def all_files(root: Path) -> list[Path]:
    """Every file under ``root``."""
    return sorted(path for path in root.rglob("*") if path.is_file())
