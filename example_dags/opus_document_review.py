"""
Review an invoice with Opus: upload the files, start the job, wait for it in the triggerer, read the verdict.

``make demo`` runs this DAG against the local Opus emulator. It runs unchanged against Opus given:

- the connection ``opus_default``, e.g.
  ``AIRFLOW_CONN_OPUS_DEFAULT='{"conn_type": "opus", "password": "<service key>"}'``;
- the Airflow Variable ``opus_workflow_id`` (or the environment variable ``AIRFLOW_VAR_OPUS_WORKFLOW_ID``):
  a workflow with the inputs below. Without it, the emulator's "Invoice Review" workflow
  ``B9uGJfZ3CFwOdMKH`` runs. The Variable is read when the task runs, never while the DAG is parsed;
- optionally ``OPUS_POLL_INTERVAL`` in the environment of the Airflow components: seconds between
  status checks (default 30).

Starting and waiting are two tasks here: ``start_review`` returns as soon as the job runs, and
``wait_for_review`` waits in the triggerer, holding no worker slot (Opus jobs can wait days for a
human review). It checks every ``OPUS_POLL_INTERVAL`` seconds at first, then less often the longer
the review takes, at most hourly (``max_poll_interval``). ``OpusExecuteJobOperator(deferrable=True)``
alone does both in one task; the other examples do that.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_opus.operators.opus import (
    OpusExecuteJobOperator,
    OpusGetJobResultsOperator,
    OpusUploadOperator,
)
from airflow_provider_opus.sensors.opus import OpusJobSensor

DATA = Path(__file__).parent / "data"
POLL_INTERVAL = float(os.environ.get("OPUS_POLL_INTERVAL", "30"))
WORKFLOW_ID = "{{ var.value.get('opus_workflow_id', 'B9uGJfZ3CFwOdMKH') }}"
THRESHOLD = 0.8


@dag(
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"customer_name": "ACME GmbH"},
    tags=["opus", "example"],
    doc_md=__doc__,
)
def opus_document_review() -> None:
    invoice = OpusUploadOperator(task_id="upload_invoice", files=str(DATA / "invoice-1001.pdf"))
    supporting_documents = OpusUploadOperator(
        task_id="upload_supporting_documents",
        files=[str(DATA / "delivery-note-1001.csv"), str(DATA / "purchase-order-1001.txt")],
    )

    start = OpusExecuteJobOperator(
        task_id="start_review",
        workflow_id=WORKFLOW_ID,
        # Keys are the inputs' display names; variable names and ids work too.
        inputs={
            "Customer Name": "{{ params.customer_name }}",
            "Threshold": THRESHOLD,
            "Invoice": invoice.output,  # a fileUrl
            "Supporting Documents": supporting_documents.output,  # a list of fileUrls
            "Due Date": "{{ (dag_run.run_after + macros.timedelta(days=30)) | ds }}",
            "Priority": True,
            "Reviewers": ["accounts-payable@example.com"],
            "Metadata": {"source": "airflow", "dag_run": "{{ run_id }}"},
        },
        wait_for_completion=False,
    )

    wait = OpusJobSensor(
        task_id="wait_for_review",
        job_execution_id=start.output,
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        max_poll_interval=max(POLL_INTERVAL, 3600),  # a review that takes days costs dozens of checks, not thousands
    )

    results = OpusGetJobResultsOperator(task_id="get_results", job_execution_id=start.output)
    wait >> results

    @task
    def decide(review: dict[str, Any]) -> dict[str, Any]:
        """Turn the workflow's output data into a decision for the next system."""
        data = review["results"].get("data") or {}
        score = float(data.get("score", 0))
        decision = {
            "job_execution_id": review["job_execution_id"],
            "verdict": data.get("verdict"),
            "score": score,
            "approved": data.get("verdict") == "PASS" and score >= THRESHOLD * 100,
            "comments": data.get("comments"),
            "output_files": review["results"].get("outputFiles") or [],
        }
        print(f"Invoice review {decision['job_execution_id']}: {decision['verdict']} (score {score:g})")
        return decision

    decide(results.output)


opus_document_review()
