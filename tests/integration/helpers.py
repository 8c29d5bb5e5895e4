"""What the integration tests share: fast execute operator and hook, started and held jobs, tasks rendered in a DAG."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING

from airflow.sdk import DAG

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.operators.opus import OpusExecuteJobOperator
from airflow_provider_opus.payload import build_job_payload
from tests.conftest import SERVICE_KEY
from tests.support.task_context import VALID_INPUTS, FakeClock, make_context

if TYPE_CHECKING:
    from typing_extensions import Self


def execute_op(**kwargs) -> OpusExecuteJobOperator:
    defaults = {
        "task_id": "run",
        "workflow_id": DEFAULT_WORKFLOW_ID,
        "inputs": VALID_INPUTS,
        "poll_interval": 0.05,
        "opus_retry_delay": 0.01,
    }
    return OpusExecuteJobOperator(**{**defaults, **kwargs})


def running_job(emulator) -> tuple[str, FakeClock]:
    """A job held IN PROGRESS until a fake clock has slept through two simulated hours."""
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    emulator.set_job_status(job_id, "IN PROGRESS")

    def finish_after_two_hours(clock: FakeClock) -> None:
        if clock.now >= 1_000 + 7_200:
            emulator.set_job_status(job_id, "COMPLETED")

    return job_id, FakeClock(1_000, finish_after_two_hours)


def assert_grew_from_30_to_600(waits: list[float]) -> None:
    assert waits[:10] == [30] * 10
    assert waits == sorted(waits) and max(waits) == 600
    assert len(waits) < 60  # fixed 30 s: 240


def fast_hook(**kwargs) -> OpusHook:
    return OpusHook(retry_delay=0.01, **kwargs)


def start_job(hook: OpusHook, inputs=VALID_INPUTS) -> str:
    schema = hook.get_job_payload_schema(DEFAULT_WORKFLOW_ID)
    job_id = hook.initiate_job(DEFAULT_WORKFLOW_ID, "title", "description")
    hook.execute_job(job_id, build_job_payload(schema, inputs, workflow_id=DEFAULT_WORKFLOW_ID))
    return job_id


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that writes no access log lines to the test output."""

    def log_message(self, *args: object) -> None:
        pass


class LoopbackHTTPServer:
    """A threaded HTTP server on loopback, serving from :meth:`__enter__` until :meth:`__exit__`."""

    def _serve_with(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class RecordingServer(LoopbackHTTPServer):
    """
    A plain HTTP server on loopback, for answers the emulator cannot give: every GET gets one answer.

    It keeps the headers of every request it got (``headers``). Use it as a context manager.

    :param status: the HTTP status of every answer.
    :param body: the body of every answer (JSON when a dict).
    """

    def __init__(self, status: int = 200, body: dict | str | None = None) -> None:
        self.headers: list[dict[str, str]] = []
        payload = (
            json.dumps(body if body is not None else {"status": "IN PROGRESS"}) if not isinstance(body, str) else body
        )
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.headers.append(dict(self.headers.items()))
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._serve_with(Handler)


class RawServer:
    """
    A loopback HTTP server that answers as a test scripts it, byte by byte: what the emulator never does.

    ``answer(method, path, send)`` answers each request; ``send(data, interval)`` sends ``data``,
    waiting ``interval`` seconds between bytes when given, and returns False once the client has gone
    or the server stops. Every answer ends when the client disconnects, so nothing outlives the test.
    """

    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    def __enter__(self) -> RawServer:
        self._threads[0].start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() a close alone leaves blocked
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def connection_json(self, **extra) -> str:
        return json.dumps({"conn_type": "opus", "host": self.url, "password": SERVICE_KEY, "extra": extra})

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        return
                    head += data
                head, body = head.split(b"\r\n\r\n", 1)
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(body) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    body += data
            except OSError:
                return
            method, path = head.split(b" ")[:2]
            self.requests.append((method.decode(), path.decode()))

            def send(data: bytes, interval: float | None = None) -> bool:
                pieces = [data] if interval is None else [data[i : i + 1] for i in range(len(data))]
                for piece in pieces:
                    if self._stop.is_set():
                        return False
                    try:
                        conn.sendall(piece)
                    except OSError:
                        return False
                    if interval is not None and self._stop.wait(interval):
                        return False
                return True

            self.answer(method.decode(), path.decode(), send)


def http_response(body: bytes, status: str = "200 OK", content_length: bool = True) -> bytes:
    """The bytes of an HTTP/1.1 JSON response; without a Content-Length the body ends with the connection."""
    length = f"Content-Length: {len(body)}\r\n" if content_length else ""
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n"
    return head.encode() + body


#: A whole answer (status line, headers, body) for a RawServer to send a byte every half second:
#: about 100 s in all, while no single read waits longer than half a second.
DRIPPED_ANSWER = http_response(b'{"status": "COMPLETED", "pad": "' + b"x" * 100 + b'"}')


def run_dag_file(emulator, tmp_path, dag_file: str, runner: str) -> str:
    """
    Run a DAG file with ``runner`` (Python code given the DAGs folder as argv[1]) in a child process.

    The child gets an AIRFLOW_HOME of its own, migrated first, with ``opus_default`` pointing at the
    emulator: a real task runner's ``dag.test()``, apart from this test process's Airflow state.

    :return: the child's output and error output together.
    """
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "dag_under_test.py").write_text(dag_file)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_OPUS_DEFAULT": emulator.connection_json(),
    }
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=240
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    done = subprocess.run(
        [sys.executable, "-c", runner, str(dags)], env=env, capture_output=True, text=True, timeout=240
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return output


def in_dag(tmp_path, **dag_kwargs) -> DAG:
    """A DAG whose templates are looked up in ``tmp_path``, for tasks rendered with :func:`render_task`."""
    return DAG("opus_dag", schedule=None, template_searchpath=str(tmp_path), **dag_kwargs)


def render_task(task, dag, **params) -> dict:
    """Render a task (or, for a mapped one, the task of map index ``map_index``) as the task runner does."""
    map_index = params.pop("map_index", -1)
    context = {
        **make_context(),
        "dag": dag,
        "dag_run": SimpleNamespace(conf={}),
        "params": params,
        "ds": "2026-01-02",
        "task": task,
    }
    context["ti"].map_index, context["ti"].task = map_index, task
    task.render_template_fields(context)
    return context
