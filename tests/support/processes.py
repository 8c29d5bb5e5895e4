"""
Long-running processes for demos, tests and benchmarks: each in its own session, its output in a log
file, its pid in a pid file.

:class:`ManagedProcess` starts one; :func:`stop_all` stops several at once (SIGTERM, a second SIGTERM to
a process and its children after ``patience``, SIGKILL to what is left after the grace period), and every
process of each tree is remembered, so :meth:`ManagedProcess.leftovers` can tell that none outlived the
stop. :func:`stop_recorded` stops the processes that the pid files of a crashed earlier run still name
(``make demo-stop``).

Each process starts in a session of its own, so Ctrl+C in a terminal reaches only the script that
started it, which then stops them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


DEFAULT_GRACE = 15.0
"""Seconds a process gets to exit after SIGTERM before it is killed."""

_LOG_TAIL_LINES = 40


class DeploymentError(RuntimeError):
    """A process did not start, died, or did not become healthy; the message carries its log tail."""


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


def stop_recorded(pid_dir: Path, grace: float = DEFAULT_GRACE, marker: str | tuple[str, ...] = "airflow") -> list[int]:
    """
    Stop the processes named by pid files of an earlier run that did not clean up (say, it was SIGKILLed).

    A pid counts only while its process group still exists and its command line contains
    ``marker`` (or one of several), so a pid that another program has reused since is left alone.

    :return: the pids that were stopped.
    """
    stopped = []
    markers = (marker,) if isinstance(marker, str) else marker
    for pid_file in sorted(pid_dir.glob("*.pid")) if pid_dir.is_dir() else []:
        try:
            pid = int(pid_file.read_text().split()[0])
            proc = psutil.Process(pid)
            cmdline = " ".join(proc.cmdline())
            if any(text in cmdline for text in markers) and os.getpgid(pid) == pid:
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


def read_text(path: Path) -> str:
    """The text of a file (undecodable bytes replaced), or "" when it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
