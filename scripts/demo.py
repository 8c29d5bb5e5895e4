"""
``make demo``: the Opus provider on a real Airflow deployment on this machine, in one command.

It starts the Opus emulator (unless ``OPUS_SERVICE_KEY`` is set) and Airflow's api-server,
scheduler, dag-processor and triggerer, triggers ``opus_document_review``, shows the task
states while it runs, prints the job's results and stops every process it started, also on
Ctrl+C or failure. All state lives under ``.demo/``; each process's output is in
``.demo/logs/<name>.log`` and the task logs in ``.demo/logs/tasks/``.

Environment (all optional):

- ``OPUS_DEMO_KEEP=1`` (or ``make demo KEEP=1``): keep Airflow running afterwards to explore
  the UI, until Ctrl+C.
- ``OPUS_SERVICE_KEY`` and ``OPUS_WORKFLOW_ID`` (and ``OPUS_API_URL`` for another API host, and
  ``OPUS_CALLBACK_URL``, an https endpoint of yours, which today's Opus requires): run against Opus
  instead of the emulator, which otherwise serves today's API generation with its own callback
  receiver. The workflow needs the inputs of the emulator's "Invoice Review" workflow
  (docs/emulator.md). The key is handed to Airflow in ``AIRFLOW_CONN_OPUS_DEFAULT`` and never printed.
- ``OPUS_POLL_INTERVAL``: seconds between job status checks (1 with the emulator, 10 with Opus).
- ``OPUS_DEMO_DIR``: the state folder instead of ``.demo``; ``OPUS_DEMO_TIMEOUT``: seconds to
  wait for the run (default 180 with the emulator, 900 with Opus).

Exit code: 0 when the run succeeded, 1 when it failed, 2 for a bad setting, 130 on Ctrl+C while it
runs. In KEEP mode Ctrl+C is how it stops: after the run it ends with the run's code.

On Airflow 3.1 and 3.2 the UI link it prints goes through ``/opus-demo/sign-in``
(``scripts/demo_sign_in.py``, a plugin of the demo's Airflow): their sign-in opens Home instead
of the page first asked for (apache/airflow#67483, fixed in 3.3).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlencode

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

from tests.support.deployment import AirflowDeployment, files_containing
from tests.support.emulator_process import EmulatorProcess
from tests.support.processes import DeploymentError, ManagedProcess, stop_all, stop_recorded

if TYPE_CHECKING:
    from types import FrameType

REPO = Path(__file__).resolve().parent.parent
DAG_ID = "opus_document_review"
EMULATOR_JOB_SECONDS = 8.0  # long enough to watch the sensor wait in the triggerer
GRACE_SECONDS = 8.0
_TRUE = ("1", "true", "yes", "on")
#: Airflow before 3.3 signs a first visitor in and opens Home, not the page asked for (apache/airflow#67483).
SIGN_IN_DROPS_THE_PAGE = Version(AIRFLOW_VERSION) < Version("3.3")


class Stop(Exception):
    """SIGTERM or SIGHUP arrived: clean up as for Ctrl+C."""


def _raise_stop(signum: int, frame: FrameType | None) -> NoReturn:
    raise Stop(signal.Signals(signum).name)


class Demo:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.root = Path(os.environ.get("OPUS_DEMO_DIR") or REPO / ".demo").resolve()
        self.keep = os.environ.get("OPUS_DEMO_KEEP", "").strip().lower() in _TRUE
        self.service_key = os.environ.get("OPUS_SERVICE_KEY", "")
        self.real_opus = bool(self.service_key)
        self.workflow_id = os.environ.get("OPUS_WORKFLOW_ID", "")
        self.poll_interval = os.environ.get("OPUS_POLL_INTERVAL") or ("10" if self.real_opus else "1")
        self.timeout = float(os.environ.get("OPUS_DEMO_TIMEOUT") or (900 if self.real_opus else 180))
        self.emulator: EmulatorProcess | None = None
        self.airflow: AirflowDeployment | None = None
        self.secret = ""
        #: In KEEP mode, once the run ended: the exit code a Ctrl+C (the way to stop it) ends with.
        self.kept_code: int | None = None

    # Output -------------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def step(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.started:5.1f}s] {text}")

    # The run ------------------------------------------------------------------------------------

    def check_settings(self) -> None:
        if self.real_opus and not self.workflow_id:
            raise SystemExit(
                "OPUS_SERVICE_KEY is set but OPUS_WORKFLOW_ID is not: set it to the id of a workflow with the "
                "inputs of the emulator's Invoice Review workflow (docs/emulator.md), or unset OPUS_SERVICE_KEY "
                "to run against the emulator."
            )
        if self.workflow_id and not self.real_opus:
            self.say("Note: OPUS_WORKFLOW_ID is ignored without OPUS_SERVICE_KEY; using the emulator.")

    def prepare(self) -> None:
        stale = stop_recorded(self.root / "pids", grace=GRACE_SECONDS)
        if stale:
            self.step(f"Stopped {len(stale)} process(es) left over from an earlier demo: {stale}")
        for sub in ("airflow", "logs", "pids"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)

    def start(self) -> AirflowDeployment:
        env = {"OPUS_POLL_INTERVAL": self.poll_interval}
        if SIGN_IN_DROPS_THE_PAGE:  # a link that signs in and opens the run page (scripts/demo_sign_in.py)
            plugins = self.root / "plugins"
            plugins.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / "scripts" / "demo_sign_in.py", plugins / "opus_demo_sign_in.py")
            env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(plugins)
        if self.real_opus:
            connection: dict[str, Any] = {"conn_type": "opus", "password": self.service_key}
            if os.environ.get("OPUS_API_URL"):
                connection["host"] = os.environ["OPUS_API_URL"]
            if os.environ.get("OPUS_CALLBACK_URL"):
                connection["extra"] = {"callback_url": os.environ["OPUS_CALLBACK_URL"]}
            env["AIRFLOW_CONN_OPUS_DEFAULT"] = json.dumps(connection)
            env["AIRFLOW_VAR_OPUS_WORKFLOW_ID"] = self.workflow_id
            self.secret = self.service_key
            where = os.environ.get("OPUS_API_URL") or "the default Opus API"
            self.step(f"Running against Opus ({where}), workflow {self.workflow_id}")
        else:
            self.secret = f"demo-{secrets.token_hex(16)}"  # a fresh key per run, never printed
            # Today's API generation; its connection carries the emulator's own callback receiver.
            self.emulator = EmulatorProcess(self.root, self.secret, job_duration=EMULATOR_JOB_SECONDS, api="current")
            self.emulator.start()
            env["AIRFLOW_CONN_OPUS_DEFAULT"] = self.emulator.connection_json()
            self.step(f"Opus emulator running at {self.emulator.url} (jobs take {EMULATOR_JOB_SECONDS:g} s)")
        self.airflow = AirflowDeployment(self.root, REPO / "example_dags", env=env)
        self.step("Creating the Airflow metadata database (SQLite)")
        self.airflow.migrate()
        self.step("Starting api-server, scheduler, dag-processor and triggerer")
        self.airflow.start()
        self.step(f"Airflow is healthy at {self.airflow.url}")
        return self.airflow

    def run(self) -> int:
        self.check_settings()
        self.say(f"Opus provider demo: {DAG_ID} on a local Airflow; state and logs in {self.root}")
        self.prepare()
        airflow = self.start()
        run_id = airflow.trigger(DAG_ID)
        self.step(f"Triggered {DAG_ID}, run {run_id}")
        shown: dict[tuple[str, int], str | None] = {}

        def progress(task_instances: list[dict[str, Any]]) -> None:
            for ti in task_instances:
                key = (ti["task_id"], ti.get("map_index", -1))
                state = ti.get("state")
                before = shown.get(key, "unseen")
                if before != state and state is not None:
                    note = ""
                    if state == "deferred":
                        note = "  (the triggerer polls Opus; no worker slot is held)"
                    elif before == "deferred":
                        note = "  (the trigger fired: the job ended; the task resumes)"
                    self.step(f"  {ti['task_id']:<28} {state}{note}")
                shown[key] = state

        run = airflow.wait_for_run(DAG_ID, run_id, self.timeout, on_change=progress)
        succeeded = run.get("state") == "success"
        if succeeded:
            self.show_results(airflow, run_id)
        else:
            self.show_failure(airflow, run_id)
        self.show_ui(airflow, run_id)
        if self.keep:
            self.say("Airflow keeps running (OPUS_DEMO_KEEP). Press Ctrl+C to stop it.")
            self.kept_code = 0 if succeeded else 1
            while True:
                airflow.check_alive()
                time.sleep(1)
        return 0 if succeeded else 1

    def show_results(self, airflow: AirflowDeployment, run_id: str) -> None:
        review = airflow.xcom(DAG_ID, run_id, "get_results")
        decision = airflow.xcom(DAG_ID, run_id, "decide")
        self.step(f"Run succeeded: {run_id}")
        self.say()
        self.say(f"Opus job {review['job_execution_id']}: {review['status']}")
        for name, value in (review.get("outputs") or {}).items():
            self.say(f"  {name:<20} {json.dumps(value) if not isinstance(value, str) else value}")
        for url in review.get("output_files") or []:
            self.say(f"  output file          {url}")
        audit = review.get("audit_trail")
        if isinstance(audit, dict):  # today's node-level audit
            executed = f"{audit.get('nb_executed_nodes')} of {audit.get('nb_nodes')}"
            self.say(f"  audit                {executed} nodes executed")
        else:
            self.say(f"  audit trail          {len(audit or [])} entries")
        approved = "approved" if decision.get("approved") else "not approved"
        self.say(f"  decision      {decision.get('verdict')}, score {decision.get('score'):g}: {approved}")
        self.say()

    def show_failure(self, airflow: AirflowDeployment, run_id: str) -> None:
        self.step(f"Run FAILED: {run_id}")
        for ti in airflow.task_instances(DAG_ID, run_id):
            if ti.get("state") in ("failed", "upstream_failed"):
                self.say(f"  {ti['task_id']}: {ti['state']}")
            if ti.get("state") == "failed":
                try_number = max(1, int(ti.get("try_number") or 1))
                for error in airflow.task_errors(DAG_ID, run_id, ti["task_id"], try_number)[-3:]:
                    self.say(f"    {error[:1000]}")
        self.say(f"  Task logs: {airflow.task_log_dir}")

    def show_ui(self, airflow: AirflowDeployment, run_id: str) -> None:
        self.say(f"Airflow UI: {ui_link(airflow.url, f'/dags/{DAG_ID}/runs/{run_id}')}")
        if SIGN_IN_DROPS_THE_PAGE:
            self.say(f"  (Airflow {AIRFLOW_VERSION} opens Home on a first visit to any other page, such as")
            self.say(f"  {airflow.url}/connections: this link signs you in first. Open it again after that.)")
        self.say("  No login needed: SIMPLE_AUTH_MANAGER_ALL_ADMINS=True makes every visitor an admin,")
        self.say("  and the api-server listens on 127.0.0.1 only.")
        if not self.keep:
            self.say("  It stops with this demo; run `make demo KEEP=1` to keep it running and explore.")

    # Cleanup ------------------------------------------------------------------------------------

    def processes(self) -> list[ManagedProcess]:
        procs = list(self.airflow.processes.values()) if self.airflow else []
        if self.emulator is not None:
            procs.append(self.emulator.process)
        return procs

    def cleanup(self) -> bool:
        """Stop every process the demo started; return whether none is left running."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C must not cut the cleanup short
        procs = [proc for proc in self.processes() if proc.popen is not None]
        if not procs:
            return True
        self.step(f"Stopping {len(procs)} processes: {', '.join(proc.name for proc in procs)}")
        if self.airflow is not None:
            self.airflow.stop(GRACE_SECONDS)  # Airflow first: its tasks may still be calling the emulator
        stop_all(procs, GRACE_SECONDS)  # the emulator, and anything that survived
        left = [p for proc in procs for p in proc.leftovers()]
        if left:
            self.step(f"WARNING: still running: {[p.pid for p in left]}")
        else:
            self.step("All stopped; nothing left running.")
        if self.secret:
            logs = sorted(path for path in (self.root / "logs").rglob("*") if path.is_file())
            leaked = files_containing(logs, self.secret)
            if leaked:
                self.step(f"WARNING: the service key appears in: {', '.join(map(str, leaked))}")
            else:
                self.step(f"Checked: the service key appears in none of the {len(logs)} log files.")
        return not left


def ui_link(base_url: str, path: str) -> str:
    """
    Return the URL that opens ``path`` of the Airflow UI on the first visit.

    Airflow 3.3 signs a first visitor in and opens the page asked for; 3.1 and 3.2 open Home
    instead, so there the link goes through the demo's sign-in plugin with ``next``.
    """
    if SIGN_IN_DROPS_THE_PAGE:
        return f"{base_url}/opus-demo/sign-in?{urlencode({'next': path})}"
    return f"{base_url}{path}"


def main() -> int:
    # Ctrl+C raises KeyboardInterrupt even where a parent shell set SIGINT to ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGHUP, _raise_stop)
    demo = Demo()
    code = 1
    try:
        code = demo.run()
    except KeyboardInterrupt:
        demo.say()
        if demo.kept_code is not None:  # KEEP mode ends with Ctrl+C: a clean stop is no error
            demo.step("Stopping, as asked.")
            code = demo.kept_code
        else:
            demo.step("Interrupted.")
            code = 130
    except Stop as stop:
        demo.step(f"Stopped by {stop}.")
        code = 143
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(f"error: {exc.code}", file=sys.stderr, flush=True)
            code = 2
        else:
            code = int(exc.code or 0)
    except DeploymentError as exc:
        demo.step(f"FAILED: {exc}")
        code = 1
    finally:
        all_stopped = demo.cleanup()
    return code if all_stopped else code or 1


if __name__ == "__main__":
    sys.exit(main())
