"""
Per-job overhead: the requests one document-review job costs, and the client CPU it takes, waits excluded.

The design brief's DAG, run through the operators directly (no scheduler), against the emulator in its
own process: ``OpusUploadOperator`` (one PDF) -> ``OpusExecuteJobOperator(deferrable=True)`` (checks the
inputs, initiates, executes, checks the status once, defers) -> ``OpusJobTrigger.run()`` (as a triggerer
would) -> ``execute_complete`` -> ``OpusJobSensor(deferrable=True)`` (the job is done: one check, no
deferral) -> ``OpusGetJobResultsOperator`` (results and audit log). One warm-up job, then several
measured ones; the emulator's request log gives the requests per endpoint. CPU is
``time.process_time`` (sleeps cost none) per phase, averaged over the jobs (garbage collections land in
whichever phase crosses a threshold, so means, not medians).

Reproduce::

    .venv/bin/python -m benchmarks.per_job
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.common import BenchEmulator, private_stdout, run_as_task, save_result

PHASES = ("upload", "execute_until_deferred", "trigger", "execute_complete", "sensor", "results")


class _TaskInstance:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}
        self.stats_tags: dict[str, str] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class _StateStore:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def _context() -> dict[str, Any]:
    return {
        "ti": _TaskInstance(),
        "dag": SimpleNamespace(dag_id="document_review"),
        "run_id": "manual__2026-01-01",
        "task_state_store": _StateStore(),
        "outlet_events": defaultdict(lambda: SimpleNamespace(extra={})),
    }


def _client(jobs: int, poll_interval: float) -> None:
    """Client process: run the flow ``jobs + 1`` times (the first is a warm-up); print CPU per phase."""
    out = private_stdout()
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
    from airflow_provider_opus.operators.opus import (
        OpusExecuteJobOperator,
        OpusGetJobResultsOperator,
        OpusUploadOperator,
    )
    from airflow_provider_opus.sensors.opus import OpusJobSensor

    workdir = tempfile.TemporaryDirectory(prefix="opus-bench-doc-")
    document = Path(workdir.name) / "invoice.pdf"
    document.write_bytes(b"%PDF-1.4\n" + b"0" * 100_000)
    out.write(json.dumps({"ready": True}) + "\n")
    sys.stdin.readline()
    # This VM charges a process blocked in epoll some CPU per second of wall time (it varies over the day);
    # the trigger phase mostly waits in the event loop, so it is reported net of that charge.
    idle_cpu0, idle_wall0 = time.process_time(), time.perf_counter()
    asyncio.run(asyncio.sleep(1.0))
    idle_rate = (time.process_time() - idle_cpu0) / (time.perf_counter() - idle_wall0)
    measured: list[dict[str, float]] = []
    gc_seconds: list[float] = []  # garbage-collection time per measured job
    gc_clock = {"total": 0.0, "start": 0.0}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_clock["start"] = time.thread_time()
        else:
            gc_clock["total"] += time.thread_time() - gc_clock["start"]

    gc.callbacks.append(on_gc)
    for index in range(jobs + 1):
        cpu: dict[str, float] = {}
        gc_before = gc_clock["total"]

        def phase(name: str, started: float, cpu: dict[str, float] = cpu) -> float:
            now = time.process_time()
            cpu[name] = now - started
            return now

        # Each task (and the resumed ``execute_complete``) runs in a short-lived thread of its own: OpusHook's
        # sessions belong to its thread's private event loop and close when the thread ends, so each task
        # opens its own connections, as it would in its own process on a worker. In this one thread they
        # would share one loop's sessions, and the connections per job would not be those of separate tasks.
        t = time.process_time()
        upload = OpusUploadOperator(task_id="upload", files=str(document))
        file_url = run_as_task(upload.execute, _context())
        t = phase("upload", t)
        run = OpusExecuteJobOperator(
            task_id="run",
            workflow_id=DEFAULT_WORKFLOW_ID,
            inputs={"Customer Name": "ACME GmbH", "Threshold": 0.8, "Invoice": file_url, "Due Date": "2026-12-01"},
            deferrable=True,
            poll_interval=poll_interval,
        )
        context = _context()
        try:
            run_as_task(run.execute, context)
            raise RuntimeError("the job finished before the operator deferred; make it longer")
        except TaskDeferred as deferred:
            trigger, method = deferred.trigger, deferred.method_name
        t = phase("execute_until_deferred", t)

        async def consume(trigger: Any = trigger) -> list[Any]:
            return [event.payload async for event in trigger.run()]

        trigger_wall = time.perf_counter()
        (event,) = asyncio.run(consume())
        t = phase("trigger", t)
        cpu["trigger_wall"] = time.perf_counter() - trigger_wall
        cpu["trigger"] = max(0.0, cpu["trigger"] - idle_rate * cpu["trigger_wall"])
        job_id = run_as_task(getattr(run, method), context, event)
        t = phase("execute_complete", t)
        sensor = OpusJobSensor(task_id="wait", job_execution_id=job_id, deferrable=True)
        run_as_task(sensor.execute, _context())
        t = phase("sensor", t)
        get_results = OpusGetJobResultsOperator(task_id="results", job_execution_id=job_id)
        results = run_as_task(get_results.execute, _context())
        phase("results", t)
        assert results["status"] == "COMPLETED", results
        if index > 0:
            measured.append(cpu)
            gc_seconds.append(gc_clock["total"] - gc_before)
    workdir.cleanup()
    out.write(json.dumps({"cpu": measured, "gc": gc_seconds, "idle_rate": idle_rate}) + "\n")


def run(jobs: int = 8, job_duration: float = 1.0, poll_interval: float = 0.4) -> dict[str, Any]:
    with BenchEmulator() as emulator, tempfile.TemporaryFile("w+") as stderr:
        emulator.call("reset")
        emulator.call("create_jobs", n=0, duration=job_duration, jitter=0)  # sets the job duration
        client = emulator.start_client("benchmarks.per_job", ["--client", str(jobs), str(poll_interval)], stderr)
        assert client.stdin is not None and client.stdout is not None
        try:
            client.stdout.readline()
            client.stdin.write("go\n")
            client.stdin.flush()
            reply = client.stdout.readline()
            if not reply:
                stderr.seek(0)
                raise RuntimeError(f"per-job client failed: {stderr.read()[-3000:]}")
            reply_data = json.loads(reply)
            measured, gc_seconds, idle_rate = reply_data["cpu"], reply_data["gc"], reply_data["idle_rate"]
            walls = [sample.pop("trigger_wall") for sample in measured]
            client.wait(30)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        stats = emulator.call("stats")
        log = emulator.call("requests")["requests"]
        jobs_seen = emulator.call("jobs")["jobs"]
        uploads = emulator.call("uploads")["uploads"]
    # Attribute each request to its job: job routes carry the id; the rest come in flow order.
    counts = Counter(_endpoint(entry["path"]) for entry in log)
    total_jobs = len(jobs_seen)
    per_job = {endpoint: count / total_jobs for endpoint, count in sorted(counts.items())}
    cpu_ms = {name: sum(sample[name] for sample in measured) / len(measured) * 1000 for name in PHASES}
    return {
        "jobs_measured": jobs,
        "jobs_total_including_warmup": total_jobs,
        "job_duration_s": job_duration,
        "poll_interval_s": poll_interval,
        "requests_per_job": per_job,
        "requests_per_job_total": sum(per_job.values()),
        # One before deferring (the operator), one by the sensor; the rest are the trigger's.
        "trigger_polls_per_job": per_job.get("get_job_status", 0) - 2,
        "tcp_connections_per_job": {
            "api": stats["connections_api"] / total_jobs,
            "storage": stats["connections_storage"] / total_jobs,
        },
        "uploads_with_service_key": sum(1 for upload in uploads if upload["had_service_key"]),
        "cpu_ms_per_phase_mean": cpu_ms,
        "cpu_ms_per_job_mean": sum(sum(sample.values()) for sample in measured) / len(measured) * 1000,
        "cpu_ms_per_job_samples": [sum(sample.values()) * 1000 for sample in measured],
        "cpu_ms_worker_side_mean": sum(sum(v for k, v in s.items() if k != "trigger") for s in measured)
        / len(measured)
        * 1000,
        # Garbage collection lands in whichever phase crosses the threshold, hence means, not medians.
        "gc_ms_per_job_mean": sum(gc_seconds) / len(gc_seconds) * 1000,
        "idle_loop_cpu_ms_per_s": idle_rate * 1000,
        "trigger_phase_wall_s_mean": sum(walls) / len(walls),
    }


def _endpoint(path: str) -> str:
    if path.startswith("/upload/"):
        return "storage_put"
    if path.startswith("/workflow/"):
        return "get_workflow"
    if path == "/job/initiate":
        return "initiate_job"
    if path == "/job/execute":
        return "execute_job"
    if path == "/job/file/upload":
        return "get_upload_url"
    suffixes = (("/status", "get_job_status"), ("/results", "get_job_results"), ("/audit", "get_job_audit_log"))
    for suffix, name in suffixes:
        if path.endswith(suffix):
            return name
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/per_job.json")
    args = parser.parse_args(argv)
    if args.client:
        _client(int(args.client[0]), float(args.client[1]))
        return 0
    result = run(args.jobs)
    print(json.dumps(result, indent=2))
    if args.save:
        save_result("per_job", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
