"""
The Opus emulator in a process of its own: for the end-to-end and reliability tests, the demo and the benchmarks.

One class starts it, finds its port, waits until it is healthy and stops it, whatever runs inside:
``python -m airflow_provider_opus.emulator`` by default, or another module that starts the emulator
and prints the same banner (the benchmarks' ``benchmarks.emulator_proc`` adds request and connection
counters and a command channel of its own; ``benchmarks.common.BenchEmulator`` speaks to it).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any

import requests

from tests.support.processes import DEFAULT_GRACE, DeploymentError, ManagedProcess, log_tail, read_text

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from types import TracebackType

#: The variable the emulator's command line reads its service key from (never from argv: others can read that).
SERVICE_KEY_ENV = "OPUS_EMULATOR_SERVICE_KEY"
#: The module run by default.
EMULATOR_MODULE = "airflow_provider_opus.emulator"


class EmulatorProcess:
    """
    The emulator as a :class:`~tests.support.processes.ManagedProcess` on a free loopback port.

    Its key is passed in the environment.

    The process is ``python -m <module> --port 0 --job-duration <job_duration>``. Once it listens it must
    print ``Opus emulator API: <url>`` (and ``Opus emulator storage: <url>``) on its output, and it must
    stop on SIGTERM; ``python -m airflow_provider_opus.emulator`` does both.

    :param root: the folder of ``logs/`` and ``pids/``.
    :param service_key: the key it accepts; given in ``OPUS_EMULATOR_SERVICE_KEY``, never on the command line.
    :param job_duration: seconds an emulated job runs.
    :param python: the interpreter that has the provider installed.
    :param module: the module to run with ``python -m``.
    :param env: more environment variables, laid over the inherited environment (from which every
        ``AIRFLOW*`` and ``OPUS_*`` variable is dropped), e.g. ``PYTHONPATH`` for a module outside the
        installed packages.
    :param name: the name of its log and pid files (``logs/<name>.log``, ``pids/<name>.pid``).
    :param api: the API generation to serve (``--api current`` or ``--api legacy``); None passes no
        ``--api``, so the module's default applies (a module other than the emulator's may not take it).
    """

    def __init__(
        self,
        root: Path,
        service_key: str,
        job_duration: float = 1.0,
        python: str = sys.executable,
        *,
        module: str = EMULATOR_MODULE,
        env: Mapping[str, str] | None = None,
        name: str = "opus-emulator",
        api: str | None = None,
    ) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "OPUS_"))}
        environment[SERVICE_KEY_ENV] = service_key
        environment["PYTHONUNBUFFERED"] = "1"
        environment.update(env or {})
        argv = [python, "-m", module, "--port", "0", "--job-duration", str(job_duration)]
        if api is not None:
            argv += ["--api", api]
        self.service_key = service_key
        #: The API generation it serves: the command line's default, "current", unless given.
        self.api = api or "current"
        self.process = ManagedProcess(name, argv, environment, root / "logs", root / "pids", root)
        self.url = ""
        self.storage_url = ""

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        """Start it and wait for its banner, which names the API URL, and for its health route."""
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = self.announced("Opus emulator API")
            if url:
                self.url = url
                self.storage_url = self.announced("Opus emulator storage") or ""
                self._wait_healthy(deadline)
                return self
            if not self.process.alive():
                break
            time.sleep(0.1)
        tail = log_tail(self.process.log_path)
        self.stop()
        raise DeploymentError(f"The Opus emulator did not start:\n{tail}")

    def announced(self, label: str) -> str | None:
        """
        Return the URL the process printed after ``<label>:`` (e.g. ``Opus emulator storage``), or None so far.

        :param label: the text before the colon.
        """
        match = re.search(rf"^{re.escape(label)}:\s+(http://\S+)", read_text(self.process.log_path), re.MULTILINE)
        return match.group(1) if match else None

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
        """SIGTERM, then SIGKILL to its process tree after ``grace`` seconds."""
        self.process.stop(grace)

    def connection_json(self) -> str:
        """
        Return the value of ``AIRFLOW_CONN_OPUS_DEFAULT`` that points Airflow at this emulator.

        As ``OpusEmulator.connection_json``: the workflow link opens the emulator's page, and today's
        generation, which requires a callback URL, gets the emulator's own receiver.
        """
        extra = {"app_url": self.url}
        if self.api == "current":
            extra["callback_url"] = f"{self.url}/_emulator/callbacks"
        return json.dumps({"conn_type": "opus", "host": self.url, "password": self.service_key, "extra": extra})

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
