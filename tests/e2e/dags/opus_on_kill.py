"""DAG of tests/e2e/test_trigger_on_kill.py: a deferred wait on a long job, which the test marks failed."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_opus.operators.opus import OpusExecuteJobOperator

WORKFLOW_ID = "B9uGJfZ3CFwOdMKH"
INPUTS = {
    "Customer Name": "On Kill Ltd",
    "Threshold": 0.5,
    "Invoice": "https://files.opus.com/media/private/uploaded/media_on_kill.pdf",
    "Due Date": "{{ ds }}",
}


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def opus_on_kill() -> None:
    """A deferred execute operator on a job that outlasts the test; no retry, so nothing starts a second job."""
    OpusExecuteJobOperator(
        task_id="run",
        workflow_id=WORKFLOW_ID,
        inputs=INPUTS,
        deferrable=True,
        poll_interval=1,
        retries=0,
    )


opus_on_kill()
