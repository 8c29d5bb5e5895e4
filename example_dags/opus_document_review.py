"""
Review an invoice with Opus: upload the files, start the job, wait for it in the triggerer, read the verdict.

``make demo`` runs this DAG against the local Opus emulator. It runs unchanged against Opus given:

- the connection ``opus_default``, e.g.
  ``AIRFLOW_CONN_OPUS_DEFAULT='{"conn_type": "opus", "password": "<service key>"}'``;
- the Airflow Variable ``opus_workflow_id`` (or the environment variable ``AIRFLOW_VAR_OPUS_WORKFLOW_ID``):
  a workflow with the inputs below. Without it, the emulator's "Invoice Review" workflow
  ``B9uGJfZ3CFwOdMKH`` runs. The Variable is read when the task runs, never while the DAG is parsed;
- optionally ``OPUS_POLL_INTERVAL`` in the environment of the Airflow components: seconds between
  status checks (default 30);
- optionally the Airflow Variable ``opus_output_folder``: where the review's output files are written,
  a local folder or a URL such as ``s3://bucket/opus`` (default: ``opus-outputs`` in the temp folder).

``decide`` takes the outputs it needs by their display names (``results.output["Verdict"]``);
``get_results`` names them from the workflow's ``jobResultsPayloadSchema``.

Starting and waiting are two tasks here: ``start_review`` returns as soon as the job runs, and
``wait_for_review`` waits in the triggerer, holding no worker slot (Opus jobs can wait days for a
human review). It checks every ``OPUS_POLL_INTERVAL`` seconds at first, then less often the longer
the review takes, at most hourly (``max_poll_interval``). ``OpusExecuteJobOperator(deferrable=True)``
alone does both in one task; the other examples do that.
"""

from __future__ import annotations

import os
import tempfile
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
# A local folder or any ObjectStoragePath URL (s3://bucket/prefix, gs://...); one subfolder per run.
OUTPUT_FOLDER = (
    "{{ var.value.get('opus_output_folder', '" + os.path.join(tempfile.gettempdir(), "opus-outputs") + "') }}"
    "/{{ dag.dag_id }}/{{ run_id | replace(':', '-') | replace('+', '-') }}"
)
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

    results = OpusGetJobResultsOperator(
        task_id="get_results",
        job_execution_id=start.output,
        workflow_id=WORKFLOW_ID,  # its jobResultsPayloadSchema names the outputs
        download_to=OUTPUT_FOLDER,  # the review's files, written where downstream tasks can read them
    )
    wait >> results

    @task
    def decide(review: dict[str, Any], verdict: str, score: float, comments: str) -> dict[str, Any]:
        """Turn the workflow's outputs into a decision for the next system."""
        decision = {
            "job_execution_id": review["job_execution_id"],
            "verdict": verdict,
            "score": float(score),
            "approved": verdict == "PASS" and float(score) >= THRESHOLD * 100,
            "comments": comments,
            "output_files": review["output_files"],
        }
        print(f"Invoice review {decision['job_execution_id']}: {verdict} (score {score:g}), files in {OUTPUT_FOLDER}")
        return decision

    # Each output is an XCom of its own, named as in the Opus app: no digging through the results.
    decide(
        results.output,
        verdict=results.output["Verdict"],
        score=results.output["Score"],
        comments=results.output["Reviewer Comments"],
    )


opus_document_review()
