"""
A daily Opus report: the run's logical date goes into the workflow as its "Report Date".

Each daily run starts workflow ``DailyReport00001`` (or the one in the Airflow Variable
``opus_report_workflow_id``) with inputs "Report Date" = ``{{ ds }}``, "Region" from the DAG's
params and "Include Charts", waits for it in the triggerer and hands the results to the next task.

Retries are safe: the job id is kept in the task's state, so a retried ``run_report`` reattaches to
the job its previous try started instead of billing a second one.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_opus.operators.opus import OpusExecuteJobOperator, OpusGetJobResultsOperator
from airflow_provider_opus.outputs import output_value

POLL_INTERVAL = float(os.environ.get("OPUS_POLL_INTERVAL", "30"))


@dag(
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={"region": "EMEA"},
    tags=["opus", "example"],
    doc_md=__doc__,
)
def opus_scheduled_report() -> None:
    report = OpusExecuteJobOperator(
        task_id="run_report",
        workflow_id="{{ var.value.get('opus_report_workflow_id', 'DailyReport00001') }}",
        inputs={
            "Report Date": "{{ ds }}",
            "Region": "{{ params.region }}",
            "Include Charts": True,
        },
        title="Daily sales report {{ ds }} ({{ params.region }})",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=6).total_seconds(),
    )

    results = OpusGetJobResultsOperator(task_id="get_report", job_execution_id=report.output, include_audit_log=False)

    @task
    def publish(report: dict[str, Any], ds: str | None = None) -> dict[str, Any]:
        """Hand the figures on: here, return them; in real life, load them into a warehouse."""
        # Outputs by variable name (or display name), whichever shape of results Opus sent.
        summary = {
            "report_date": ds,
            "job_execution_id": report["job_execution_id"],
            "total_sales": output_value(report, "total_sales"),
            "orders": output_value(report, "orders"),
            "currency": output_value(report, "currency"),
            "files": report["output_files"],
        }
        print(f"Sales on {ds}: {summary['total_sales']} {summary['currency']} in {summary['orders']} orders")
        return summary

    publish(results.output)


opus_scheduled_report()
