"""
A real Airflow deployment on this machine, for demos and tests.

:class:`AirflowDeployment` runs ``airflow db migrate`` and then the api-server, scheduler,
dag-processor and triggerer, each as its own process (SQLite, LocalExecutor, loopback only,
a free port picked at run time), and drives it through the REST API at ``/api/v2``:
trigger a DAG, follow a run, read XComs and task logs. Its processes are
:class:`~tests.support.processes.ManagedProcess` objects; the emulator beside it is
:class:`~tests.support.emulator_process.EmulatorProcess`.

Every file lives under one folder (``root``)::

    root/airflow/      AIRFLOW_HOME: airflow.db, airflow.cfg
    root/logs/         one <component>.log per process (its stdout and stderr)
    root/logs/tasks/   Airflow's task and trigger logs
    root/pids/         one <component>.pid per running process

:meth:`AirflowDeployment.stop` sends SIGTERM to each component (the api-server last), a second
SIGTERM to it and its children after 3 s, SIGKILL to their children after 6 s and to whatever of
its process tree is left after the grace period; :meth:`AirflowDeployment.leftovers` then tells
whether any process outlived the stop.

Used by ``make demo`` (``scripts/demo.py``), ``tests/e2e`` and the reliability suite::

    with EmulatorProcess(root, service_key="k", job_duration=5, api="legacy") as emulator, AirflowDeployment(
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
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psutil
import requests

from tests.support.processes import DEFAULT_GRACE, DeploymentError, ManagedProcess, free_port, log_tail, stop_all

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType


COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
"""The Airflow components a deployment runs, each as its own process."""

FINISHED_RUN_STATES = frozenset({"success", "failed"})
SECOND_SIGNAL_AFTER = 3.0
"""Seconds an Airflow component gets after SIGTERM before a second one tells it to stop waiting."""

_REQUIRED: Any = object()


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
                self._authenticate()
                return
            time.sleep(0.5)
        raise DeploymentError(f"Airflow did not become healthy within {timeout:.0f} s: {health}")

    def _authenticate(self) -> None:
        # Airflow 3.1's API wants a token even when everyone is an admin (3.2+ makes one per request);
        # with SIMPLE_AUTH_MANAGER_ALL_ADMINS, GET /auth/token hands one out without credentials.
        if "Authorization" in self._http.headers:
            return
        response = self._http.get(f"{self.url}/auth/token", timeout=30)
        if not response.ok:
            raise DeploymentError(f"GET /auth/token: {response.status_code} {response.text[:500]}")
        self._http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    # REST API -----------------------------------------------------------------------------------

    def api(self, method: str, path: str, *, timeout: float = 30.0, **kwargs: Any) -> Any:
        """
        Call ``/api/v2<path>`` and return the decoded JSON body (None when empty).

        :raises DeploymentError: for an error status, with the response text.
        """
        deadline = time.monotonic() + timeout
        while True:
            response = self._http.request(method, f"{self.url}/api/v2{path}", timeout=timeout, **kwargs)
            # SQLite lets one writer in at a time: a scheduler or dag-processor holding the lock past the API
            # server's busy timeout fails the call whole ("Database error", rolled back). Such calls go again.
            locked = response.status_code == 500 and "Database error" in response.text and method != "POST"
            if not locked or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not response.ok:
            raise DeploymentError(f"{method} /api/v2{path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def connection_form(self, connection_type: str) -> dict[str, Any]:
        """The connection form the UI shows for ``connection_type`` (``GET /ui/connections/hook_meta``)."""
        response = self._http.get(f"{self.url}/ui/connections/hook_meta", timeout=60)
        if not response.ok:
            raise DeploymentError(f"GET /ui/connections/hook_meta: {response.status_code} {response.text[:500]}")
        forms = [form for form in response.json() if form.get("connection_type") == connection_type]
        if len(forms) != 1:
            raise DeploymentError(f"hook_meta has {len(forms)} entries of connection type {connection_type!r}")
        return dict(forms[0])

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
