"""DAGs the reliability suite runs on a real Airflow: many deferred jobs, and a job waited for in a worker."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from airflow_provider_opus.operators.opus import OpusExecuteJobOperator

WORKFLOW_ID = "B9uGJfZ3CFwOdMKH"
INPUTS = {
    "Customer Name": "Reliability Ltd",
    "Threshold": 0.5,
    "Invoice": "https://files.opus.com/media/private/uploaded/media_reliability.pdf",
    "Due Date": "{{ ds }}",
}


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False, params={"jobs": 10})
def opus_reliability_deferred() -> None:
    """``params.jobs`` deferrable jobs at once, one mapped task instance each."""

    @task
    def titles(**context) -> list[str]:
        return [f"job {i}" for i in range(int(context["params"]["jobs"]))]

    OpusExecuteJobOperator.partial(
        task_id="run",
        workflow_id=WORKFLOW_ID,
        inputs=INPUTS,
        deferrable=True,
        poll_interval=2,
        opus_retry_delay=0.2,
        max_active_tis_per_dag=None,
    ).expand(title=titles())


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def opus_reliability_worker_wait() -> None:
    """One job waited for in the worker; the task retries once if its process dies."""
    OpusExecuteJobOperator(
        task_id="run",
        workflow_id=WORKFLOW_ID,
        inputs=INPUTS,
        deferrable=False,
        poll_interval=1,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )


opus_reliability_deferred()
opus_reliability_worker_wait()
