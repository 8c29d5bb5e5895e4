"""What the integration tests share: a fast execute operator and hook, a job started on the emulator, a held job."""

from __future__ import annotations

import socket

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.operators.opus import OpusExecuteJobOperator
from airflow_provider_opus.payload import build_job_payload
from tests.support.task_context import VALID_INPUTS, FakeClock, make_context


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
