"""
The emulator in a process of its own, with counters and commands for the benchmarks.

Started by :class:`benchmarks.common.BenchEmulator` (a :class:`tests.support.emulator_process.EmulatorProcess`):
like ``python -m airflow_provider_opus.emulator`` it takes ``--port`` and ``--job-duration``, reads its
key from ``OPUS_EMULATOR_SERVICE_KEY``, prints ``Opus emulator API: <url>`` and ``Opus emulator storage:
<url>`` once it listens, and stops on SIGTERM. Besides the emulator's own request log, it counts requests
per endpoint (exactly, whatever the log's length limit) and TCP connections accepted per listener, and it
can create and execute thousands of jobs directly in its state.

Its commands come as JSON objects ``{"op": ..., ...}`` POSTed to the URL it prints as
``Benchmark control: <url>`` (a listener of its own, so they count neither as API requests nor as
API connections); each gets one JSON object back. Commands: ``reset``, ``create_jobs {n, duration,
jitter}``, ``stats``, ``requests {endpoint}``, ``jobs``, ``uploads``, ``presign {extension}``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from airflow_provider_opus.emulator import REPORT_WORKFLOW_ID, OpusEmulator
from benchmarks.common import CONTROL_LABEL, HOST, SERVICE_KEY
from tests.support.emulator_process import SERVICE_KEY_ENV

#: A valid jobPayloadSchemaInstance of the bundled "Daily Sales Report" workflow (no files).
REPORT_INSTANCE = {
    "workflow_input_rd7q2m1xa": {"value": "2026-01-01", "type": "date"},
    "workflow_input_rg4k8v0zn": {"value": "EMEA", "type": "str"},
}

_lock = threading.Lock()
_connections: Counter[int] = Counter()  # accepted TCP connections by local (listener) port
_requests: Counter[str] = Counter()  # requests by endpoint name


def _count_connections() -> None:
    original = H11Protocol.connection_made

    def connection_made(self: H11Protocol, transport: Any) -> None:
        sockname = transport.get_extra_info("sockname")
        with _lock:
            _connections[sockname[1] if sockname else 0] += 1
        original(self, transport)

    H11Protocol.connection_made = connection_made  # type: ignore[method-assign]


def _count_requests(emulator: OpusEmulator) -> None:
    state = emulator.state
    original = state.log_request

    def log_request(listener: str, endpoint: str | None, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            _requests[endpoint or "unknown"] += 1
        return original(listener, endpoint, *args, **kwargs)

    state.log_request = log_request  # type: ignore[method-assign]


def _timestamp(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def handle(emulator: OpusEmulator, command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    state = emulator.state
    if op == "reset":
        emulator.reset()
        with _lock:
            _connections.clear()
            _requests.clear()
        return {"ok": True}
    if op == "create_jobs":
        emulator.configure(job_duration=float(command["duration"]), job_duration_jitter=float(command["jitter"]))
        ids = []
        for index in range(int(command["n"])):
            job_id = state.create_job(REPORT_WORKFLOW_ID, f"bench {index}", "benchmark job")
            state.execute_job(job_id, REPORT_INSTANCE)
            ids.append(job_id)
        return {"ids": ids, "executed_at": time.time()}
    if op == "stats":
        api_port, storage_port = _port(emulator.url), _port(emulator.storage_url)
        with _lock:
            return {
                "requests": dict(_requests),
                "connections_api": _connections[api_port],
                "connections_storage": _connections[storage_port],
                "cpu_seconds": time.process_time(),
                "time": time.time(),
            }
    if op == "requests":
        entries = emulator.requests(command.get("endpoint"))
        return {"requests": [{"path": e["path"], "time": e["time"], "status": e["status"]} for e in entries]}
    if op == "jobs":
        return {
            "jobs": [
                {
                    "id": job["jobExecutionId"],
                    "status": job["status"],
                    "executed_at": _timestamp(job["executedAt"]),
                    "finishes_at": _timestamp(job["finishesAt"]),
                }
                for job in emulator.jobs()
            ]
        }
    if op == "uploads":
        return {"uploads": emulator.uploads()}
    if op == "presign":
        presigned_url, file_url = state.issue_upload(command.get("extension", "pdf"), "organization")
        return {"presignedUrl": presigned_url, "fileUrl": file_url}
    raise ValueError(f"unknown op {op!r}")


def _control_server(emulator: OpusEmulator, host: str) -> HTTPServer:
    """A listener of its own for the commands: one request at a time, as :func:`handle` expects."""

    class Commands(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                reply = handle(emulator, json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            except Exception as exc:
                reply = {"error": repr(exc)}
            body = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per command would fill the log

    return HTTPServer((host, 0), Commands)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--job-duration", type=float, default=1.0)
    args = parser.parse_args()
    _count_connections()
    service_key = os.environ.get(SERVICE_KEY_ENV) or SERVICE_KEY
    emulator = OpusEmulator(
        service_key=service_key, job_duration=args.job_duration, host=args.host, port=args.port, api="legacy"
    )
    _count_requests(emulator)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    emulator.start()
    control = _control_server(emulator, args.host)
    threading.Thread(target=control.serve_forever, name="bench-control", daemon=True).start()
    try:
        host, port = control.server_address[:2]
        # The control line first: EmulatorProcess reads the banner once the API line is there.
        print(f"{CONTROL_LABEL}: http://{host}:{port}", flush=True)
        print(f"Opus emulator API:     {emulator.url}", flush=True)
        print(f"Opus emulator storage: {emulator.storage_url}", flush=True)
        stop.wait()
    finally:
        control.shutdown()
        control.server_close()
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
