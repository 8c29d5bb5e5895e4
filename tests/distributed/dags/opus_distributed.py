"""DAGs the distributed suite runs: many deferred jobs, a job waited for in a worker, bursts of short jobs."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from airflow_provider_opus.operators.opus import OpusExecuteJobOperator

WORKFLOW_ID = "B9uGJfZ3CFwOdMKH"
INPUTS = {
    "Customer Name": "Distributed Ltd",
    "Threshold": 0.5,
    "Invoice": "https://files.opus.com/media/private/uploaded/media_distributed.pdf",
    "Due Date": "{{ ds }}",
}


@task
def titles(**context) -> list[str]:
    """One job title per mapped task: the run id and an index, so every job is traceable to its task."""
    return [f"{context['run_id']} {i}" for i in range(int(context["params"]["jobs"]))]


def deferred_dag(dag_id: str, poll_interval: float, max_poll_interval: float) -> None:
    """``params.jobs`` deferrable jobs at once, one mapped task instance each, the poll interval growing."""

    @dag(dag_id=dag_id, schedule=None, start_date=datetime(2025, 1, 1), catchup=False, params={"jobs": 10})
    def deferred() -> None:
        OpusExecuteJobOperator.partial(
            task_id="run",
            workflow_id=WORKFLOW_ID,
            inputs=INPUTS,
            deferrable=True,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            opus_retry_delay=0.2,
            max_active_tis_per_dag=None,
        ).expand(title=titles())

    deferred()


# 200 triggers: start at one poll per 2 s each, slow down to one per 10 s as the wait goes on.
deferred_dag("opus_distributed_load", poll_interval=2, max_poll_interval=10)
# The wait between polls grows by a tenth of the time waited: after a minute, 6 s, where a
# trigger that forgot its start when it moved would poll every second again.
deferred_dag("opus_distributed_failover", poll_interval=1, max_poll_interval=60)


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def opus_distributed_worker_wait() -> None:
    """One job waited for in a Celery worker; the task retries once if its worker is lost."""
    OpusExecuteJobOperator(
        task_id="run",
        workflow_id=WORKFLOW_ID,
        inputs=INPUTS,
        title="{{ run_id }}",
        deferrable=False,
        poll_interval=1,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False, params={"jobs": 10})
def opus_distributed_burst() -> None:
    """``params.jobs`` short jobs, each waited for in a worker: many runs of it at once keep both schedulers busy."""
    OpusExecuteJobOperator.partial(
        task_id="run",
        workflow_id=WORKFLOW_ID,
        inputs=INPUTS,
        deferrable=False,
        poll_interval=1,
        max_active_tis_per_dag=None,
    ).expand(title=titles())


opus_distributed_worker_wait()
opus_distributed_burst()
