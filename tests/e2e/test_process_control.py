"""How tests/support/processes.py starts and stops processes, on plain Python processes (no Airflow)."""

from __future__ import annotations

import signal
import sys
import time
from typing import TYPE_CHECKING

import psutil

from tests.support.processes import ManagedProcess, stop_all, stop_recorded

if TYPE_CHECKING:
    from pathlib import Path

# A parent and its child that both ignore SIGTERM: the worst case a stop meets.
IGNORE_SIGTERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
STUBBORN = f"""
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([{sys.executable!r}, "-c", {IGNORE_SIGTERM!r}])
print("started", child.pid, flush=True)
time.sleep(600)
"""
POLITE = "import time; print('ready', flush=True); time.sleep(600)"


def managed(tmp_path: Path, name: str, code: str) -> ManagedProcess:
    proc = ManagedProcess(name, [sys.executable, "-c", code], {}, tmp_path / "logs", tmp_path / "pids", tmp_path)
    proc.start()
    deadline = time.monotonic() + 10
    while not proc.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


def test_a_polite_process_stops_on_sigterm_and_its_pid_file_goes(tmp_path: Path) -> None:
    proc = managed(tmp_path, "polite", POLITE)
    assert proc.pid_file.read_text().strip() == str(proc.pid)
    proc.stop(grace=5)
    assert proc.returncode() == -signal.SIGTERM and proc.killed == []  # SIGTERM was enough: nothing was killed
    assert proc.leftovers() == [] and not proc.pid_file.exists()


def test_a_stubborn_tree_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    proc = managed(tmp_path, "stubborn", STUBBORN)
    child_pid = int(proc.log_path.read_text().split()[1])
    proc.snapshot()
    assert child_pid in proc.seen
    started = time.monotonic()
    stop_all([proc], grace=2, patience=0.4)
    # The parent was given its grace period before SIGKILL (no upper bound: this machine is shared and noisy).
    assert time.monotonic() - started > 1.9
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
    assert proc.returncode() == -signal.SIGKILL
    assert child_pid in proc.killed and proc.leftovers() == []


def test_stop_recorded_stops_what_a_crashed_run_left(tmp_path: Path) -> None:
    proc = managed(tmp_path, "orphan", POLITE)  # never stopped by its owner, as after a SIGKILLed demo
    assert stop_recorded(tmp_path / "pids", grace=5, marker="no such command") == []  # not ours: left alone
    proc.pid_file.write_text(f"{proc.pid}\n")
    assert proc.alive()
    assert stop_recorded(tmp_path / "pids", grace=5, marker="time.sleep") == [proc.pid]
    assert not proc.alive() and proc.leftovers() == []
    assert list((tmp_path / "pids").iterdir()) == []
