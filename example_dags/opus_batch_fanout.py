"""
One Opus job per invoice: dynamic task mapping over the files found when the run starts.

``list_invoices`` globs ``example_dags/data/`` for ``params.pattern`` at run time, each file gets its
own ``review_invoice`` job (a mapped, deferrable OpusExecuteJobOperator: local paths are uploaded
before the job starts), ``get_results`` fetches each job's results and ``summarize`` gathers them.

The workflow comes from the Airflow Variable ``opus_workflow_id`` (default: the emulator's
``B9uGJfZ3CFwOdMKH``); ``OPUS_POLL_INTERVAL`` sets the seconds between status checks (default 30).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import dag, task

from airflow_provider_opus.operators.opus import OpusExecuteJobOperator, OpusGetJobResultsOperator
from airflow_provider_opus.outputs import output_value

if TYPE_CHECKING:
    from airflow.sdk.types import DagRunProtocol

DATA = Path(__file__).parent / "data"
POLL_INTERVAL = float(os.environ.get("OPUS_POLL_INTERVAL", "30"))
WORKFLOW_ID = "{{ var.value.get('opus_workflow_id', 'B9uGJfZ3CFwOdMKH') }}"


@dag(
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"pattern": "invoice-*.pdf", "customer_name": "ACME GmbH"},
    tags=["opus", "example"],
    doc_md=__doc__,
)
def opus_batch_fanout() -> None:
    @task
    def list_invoices(
        params: dict[str, Any] | None = None, dag_run: DagRunProtocol | None = None
    ) -> list[dict[str, Any]]:
        """The inputs of one job per matching file."""
        assert params is not None and dag_run is not None
        paths = sorted(DATA.glob(params["pattern"]))
        if not paths:
            raise FileNotFoundError(f"No file in {DATA} matches {params['pattern']!r}")
        due_date = (dag_run.run_after + timedelta(days=30)).date().isoformat()
        return [
            {
                "Customer Name": params["customer_name"],
                "Threshold": 0.8,
                "Invoice": str(path),
                "Due Date": due_date,
                "Metadata": {"file": path.name},
            }
            for path in paths
        ]

    reviews = OpusExecuteJobOperator.partial(
        task_id="review_invoice",
        workflow_id=WORKFLOW_ID,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        map_index_template="{{ task.inputs['Metadata']['file'] }}",
    ).expand(inputs=list_invoices())

    results = OpusGetJobResultsOperator.partial(task_id="get_results", include_audit_log=False).expand(
        job_execution_id=reviews.output
    )

    @task
    def summarize(all_results: list[dict[str, Any]]) -> dict[str, Any]:
        """One row per job, and the count of invoices that passed."""
        rows = [
            {
                "job_execution_id": result["job_execution_id"],
                # By variable name: the same in either shape of results, with or without display names.
                "verdict": output_value(result, "verdict"),
                "score": output_value(result, "score"),
            }
            for result in all_results
        ]
        passed = sum(row["verdict"] == "PASS" for row in rows)
        print(f"{passed} of {len(rows)} invoices passed")
        return {"jobs": len(rows), "passed": passed, "rows": rows}

    summarize(results.output)


opus_batch_fanout()
