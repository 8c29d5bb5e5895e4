"""DAGs of tests/e2e/test_deadlines.py: deferred waits that ``execution_timeout`` must end, on jobs that outlast it."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag

from airflow_provider_opus.operators.opus import OpusExecuteJobOperator
from airflow_provider_opus.sensors.opus import OpusJobSensor

WORKFLOW_ID = "B9uGJfZ3CFwOdMKH"
INPUTS = {
    "Customer Name": "Deadline Ltd",
    "Threshold": 0.5,
    "Invoice": "https://files.opus.com/media/private/uploaded/media_deadline.pdf",
    "Due Date": "{{ ds }}",
}
#: Each try may wait this long; the emulator's jobs (tests/e2e/test_deadlines.py) run two and a half times as long.
EXECUTION_TIMEOUT = timedelta(seconds=20)
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=1)}


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def opus_deadline_operator() -> None:
    """A deferred execute operator whose tries time out while the job runs: each retry reattaches."""
    OpusExecuteJobOperator(
        task_id="run",
        workflow_id=WORKFLOW_ID,
        inputs=INPUTS,
        deferrable=True,
        poll_interval=1,
        execution_timeout=EXECUTION_TIMEOUT,
        **RETRIES,
    )


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def opus_deadline_sensor() -> None:
    """A job started without waiting, and a deferred sensor whose tries time out while it runs."""
    start = OpusExecuteJobOperator(task_id="start", workflow_id=WORKFLOW_ID, inputs=INPUTS, wait_for_completion=False)
    wait = OpusJobSensor(
        task_id="wait",
        job_execution_id=start.output,
        deferrable=True,
        poke_interval=1,
        execution_timeout=EXECUTION_TIMEOUT,
        **RETRIES,
    )
    start >> wait


opus_deadline_operator()
opus_deadline_sensor()
