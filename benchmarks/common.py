"""What every benchmark shares: the environment, the emulator process, statistics and results files."""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.support.emulator_process import EmulatorProcess
from tests.support.processes import DEFAULT_GRACE

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
PYTHON = sys.executable
#: Long enough for Airflow's secrets masker, distinctive enough to grep for.
SERVICE_KEY = "bench-service-key-5d1e9c7a3f"
HOST = "127.0.0.1"
#: The line of ``benchmarks/emulator_proc.py`` that names its command URL.
CONTROL_LABEL = "Benchmark control"

MIB = 2**20
#: The file sizes the upload and download benchmarks move, by label.
FILE_SIZES = {"10 MiB": 10 * MIB, "100 MiB": 100 * MIB, "1 GiB": 1024 * MIB}


def bench_env(**extra: str) -> dict[str, str]:
    """
    The environment for benchmark subprocesses: a private AIRFLOW_HOME, no example DAGs.

    :param extra: more variables (e.g. ``AIRFLOW_CONN_OPUS_DEFAULT``).
    """
    env = dict(os.environ)
    home = os.environ.get("OPUS_BENCH_AIRFLOW_HOME")
    if not home:
        # One throwaway AIRFLOW_HOME for this process and the processes it starts; removed at exit.
        home = tempfile.mkdtemp(prefix="opus-bench-airflow-home-")
        os.environ["OPUS_BENCH_AIRFLOW_HOME"] = home
        atexit.register(shutil.rmtree, home, True)
    env.update(
        {
            "AIRFLOW_HOME": home,
            "OPUS_BENCH_AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        }
    )
    # Deployments import from .pyc files; any value of this variable (even "0") stops writing them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("AIRFLOW_CONN_OPUS_DEFAULT", None)
    env.update(extra)
    return env


def setup_airflow_env() -> None:
    """Make this process's environment the benchmark environment (before Airflow is imported)."""
    os.environ.update({k: v for k, v in bench_env().items() if k.startswith(("AIRFLOW", "OPUS_BENCH"))})


# -- statistics ------------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """The median, or NaN for no values."""
    values = list(values)
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """
    The q-th percentile (nearest rank), or NaN for no values.

    :param values: the sample.
    :param q: 0..100.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_mib() -> float:
    """This process's current resident set size in MiB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """This process's peak resident set size so far in MiB (Linux: VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def calibrate() -> float:
    """
    CPU milliseconds for a fixed pure-Python workload (best of 5): how fast the machine is right now.

    On a shared VM the same code costs more CPU time when neighbours are busy; absolute CPU figures are
    comparable between runs only at similar calibration values. Ratios within a round are not affected.
    """
    best = math.inf
    for _ in range(5):
        started = time.process_time()
        sum(i * i for i in range(200_000))
        json.loads(json.dumps([{"status": "IN PROGRESS", "n": i} for i in range(2_000)]))
        best = min(best, time.process_time() - started)
    return best * 1000


def idle_loop_charge(seconds: float = 0.5) -> float:
    """
    CPU milliseconds per second charged to a process whose asyncio loop just waits.

    On this VM a process blocked in epoll is charged some CPU, and how much varies over the day; the
    triggerer and per-job figures are net of it (each measures it in its own process).
    """
    import asyncio

    started_cpu, started = time.process_time(), time.perf_counter()
    asyncio.run(asyncio.sleep(seconds))
    return (time.process_time() - started_cpu) / (time.perf_counter() - started) * 1000


# -- results -----------------------------------------------------------------------------------------


def save_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def load_result(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and the versions of the packages on the measured paths."""
    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_total = None
    try:
        with open("/proc/meminfo") as meminfo:
            mem_total = round(int(meminfo.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        curl = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        curl = "not installed"
    packages = [
        "apache-airflow",
        "apache-airflow-core",
        "apache-airflow-task-sdk",
        "airflow-provider-opus",
        "aiohttp",
        "httpx",
        "certifi",
        "tenacity",
        "fastapi",
        "starlette",
        "uvicorn",
        "h11",
    ]
    return {
        "cpu_model": cpu_model,
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": mem_total,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "curl": curl,
        "packages": {name: _version(name) for name in packages},
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


# -- the emulator, in a process of its own -----------------------------------------------------------


def source_tree(ref: str) -> Path:
    """
    Return a folder holding the source tree of git commit ``ref`` (extracted once, with ``git archive``).

    A process started there with ``python -m`` imports that commit's ``airflow_provider_opus`` and
    ``benchmarks``: the current directory comes before the editable install on ``sys.path``.

    :param ref: a commit, tag or branch of this repository.
    """
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    folder = Path(tempfile.gettempdir()) / f"opus-bench-source-{sha[:12]}"
    if not (folder / "airflow_provider_opus").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


class BenchEmulator(EmulatorProcess):
    """
    The emulator in a separate process (``benchmarks/emulator_proc.py``), with that process's commands.

    Its CPU is not counted in the client's, and it can create thousands of jobs in-process at once.
    Starting, health and stopping are :class:`tests.support.emulator_process.EmulatorProcess`'s;
    this adds :meth:`call` (the commands of ``benchmarks/emulator_proc.py``, over its control URL)
    and :meth:`start_client`. Its log and pid file go to a temporary folder, removed on stop.

    :param job_duration: initial job duration in seconds.
    """

    def __init__(self, job_duration: float = 1.0) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="opus-bench-emulator-"))
        pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        super().__init__(
            self._root,
            SERVICE_KEY,
            job_duration,
            PYTHON,
            module="benchmarks.emulator_proc",
            env={"PYTHONPATH": pythonpath},
            name="bench-emulator",
        )
        self.control_url = ""
        # Straight to loopback, whatever proxy the environment names.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self, timeout: float = 30.0) -> BenchEmulator:
        try:
            super().start(timeout)
            self.control_url = self.announced(CONTROL_LABEL) or ""
            if not self.control_url:
                raise RuntimeError(f"the emulator process did not print its {CONTROL_LABEL} URL")
        except BaseException:
            self.stop()
            raise
        return self

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Run one command in the emulator process and return its JSON reply."""
        request = urllib.request.Request(
            self.control_url,
            data=json.dumps({"op": op, **args}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with self._opener.open(request, timeout=300) as response:
            reply = json.loads(response.read())
        if "error" in reply:
            raise RuntimeError(f"emulator process: {reply['error']}")
        return reply

    def start_client(self, module: str, args: Sequence[str], stderr: Any, root: Path = ROOT) -> subprocess.Popen[str]:
        """
        A benchmark client process (``python -m <module> <args>``) whose ``opus_default`` connection is this emulator.

        It talks JSON lines on stdin and stdout.

        :param module: the benchmark module, e.g. ``benchmarks.per_job``.
        :param args: its command-line arguments.
        :param stderr: where its stderr goes (a file, or ``subprocess.DEVNULL``).
        :param root: the source tree it runs from (its ``benchmarks`` and ``airflow_provider_opus``): another
            commit's, extracted by :func:`source_tree`, to measure that commit's code in the same run.
        """
        return subprocess.Popen(
            [PYTHON, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=root,
            env=bench_env(AIRFLOW_CONN_OPUS_DEFAULT=self.connection_json()),
        )

    def stop(self, grace: float = DEFAULT_GRACE) -> None:
        try:
            super().stop(grace)
        finally:
            shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> BenchEmulator:
        return self.start()


def private_stdout() -> Any:
    """
    A text stream on the original stdout for this process's JSON replies; fd 1 then goes to stderr.

    Airflow's logging writes to stdout, which would corrupt the JSON line protocol otherwise.
    """
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send fd 1 to /dev/null for a while: Airflow's log lines go there, thousands of them in some benchmarks."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def open_hook_sessions(hook: Any, *, api: bool = True) -> None:
    """
    Read an ``OpusHook``'s connection and open its aiohttp sessions, without sending a request.

    OpusHook has no session attributes: it makes its calls with ``transport.exchange`` on its thread's private
    event loop, which opens the loop's sessions at the first call. A benchmark that times a transfer opens
    them first, on that same loop, so that the timing holds neither the loop's creation, nor aiohttp's client,
    nor the TLS context (certifi's CAs); as no request is sent, the emulator's counts are unchanged.

    :param hook: the ``OpusHook``.
    :param api: open the API's session (with the service key) too, not only the storage one.
    """
    from airflow_provider_opus import transport
    from airflow_provider_opus.hooks.opus import _private_loop

    settings = hook.settings
    keys = [settings, (settings,)] if api else [(settings,)]  # the API's, the storage one's (no key)

    async def open_sessions() -> None:
        for key in keys:
            if transport.loop_session(key) is None:
                await transport.new_session(key)

    _private_loop().run_until_complete(open_sessions())


def run_as_task(function: Callable[..., Any], *args: Any) -> Any:
    """
    Call ``function(*args)`` in a short-lived thread of its own, as one Airflow task; return what it returns.

    OpusHook makes its calls on its thread's private event loop, whose aiohttp sessions (and so connections)
    last as long as the thread, and close when it ends. On a worker each task runs in a process of its own,
    so each opens its own connections; several simulated tasks called one after another in one thread would
    instead share that thread's sessions, and a benchmark would count one task's connections for all of them.
    A thread per task gives each its own loop and sessions, closed when the task ends, as a task's process
    would. The caller waits for the thread (tasks run one after another, as before); the context variables
    are copied into it, and an exception raised there is raised again here.

    :param function: the task's body, e.g. an operator's ``execute``.
    :param args: its arguments.
    """
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["result"] = context.run(function, *args)
        except BaseException as exc:  # raised again in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="opus-bench-task")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
