"""
Data-aware scheduling: an Opus job's completion updates an Asset, which starts a second DAG.

``opus_asset_chain_producer`` reviews an invoice. Its ``review_invoice`` task has the Asset
``opus_reviewed_invoices`` as outlet: when the job completes, Airflow records an asset event whose
extra carries ``job_execution_id``, ``outputs`` (by display name) and ``output_files``.

``opus_asset_chain_consumer`` is scheduled on that Asset. It reads each job's id, verdict and output
files from ``triggering_asset_events`` (one event per producer run since its last run), with no call
to Opus.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, dag, task

from airflow_provider_opus.operators.opus import OpusExecuteJobOperator

if TYPE_CHECKING:
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

DATA = Path(__file__).parent / "data"
POLL_INTERVAL = float(os.environ.get("OPUS_POLL_INTERVAL", "30"))
WORKFLOW_ID = "{{ var.value.get('opus_workflow_id', 'B9uGJfZ3CFwOdMKH') }}"

REVIEWED_INVOICES = Asset(name="opus_reviewed_invoices", uri="file:///opus/reviewed-invoices")


@dag(
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["opus", "example"],
    doc_md=__doc__,
)
def opus_asset_chain_producer() -> None:
    OpusExecuteJobOperator(
        task_id="review_invoice",
        workflow_id=WORKFLOW_ID,
        inputs={
            "Customer Name": "Globex Ltd",
            "Threshold": 0.8,
            "Invoice": str(DATA / "invoice-1002.pdf"),  # a local path is uploaded first
            "Due Date": "{{ (dag_run.run_after + macros.timedelta(days=30)) | ds }}",
        },
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        outlets=[REVIEWED_INVOICES],
    )


@dag(
    schedule=[REVIEWED_INVOICES],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["opus", "example"],
    doc_md=__doc__,
)
def opus_asset_chain_consumer() -> None:
    @task
    def archive_outputs(triggering_asset_events: TriggeringAssetEventsAccessor | None = None) -> list[dict[str, Any]]:
        """One entry per completed job that triggered this run: its id, verdict and output files."""
        assert triggering_asset_events is not None
        archived = []
        for event in triggering_asset_events[REVIEWED_INVOICES]:
            job_execution_id = str(event.extra["job_execution_id"])
            output_files = list(event.extra["output_files"] or [])
            verdict = event.extra["outputs"].get("Verdict")
            print(f"Job {job_execution_id} ({verdict}) produced {len(output_files)} file(s)")
            archived.append(
                {
                    "job_execution_id": job_execution_id,
                    "verdict": verdict,
                    "output_files": output_files,
                    "source_run_id": event.source_run_id,
                }
            )
        return archived

    archive_outputs()


opus_asset_chain_producer()
opus_asset_chain_consumer()
