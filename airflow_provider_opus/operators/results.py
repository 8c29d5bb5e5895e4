"""Fetch a completed Opus job's results for downstream tasks, and optionally its output files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_opus.api import GET_JOB_RESULTS, checked_job_id
from airflow_provider_opus.downloads import as_destination, check_writable_folder, file_name_for
from airflow_provider_opus.exceptions import OpusError, OpusJobFailedError
from airflow_provider_opus.operators.base import OpusBaseOperator, audit_tail, rendered_later
from airflow_provider_opus.outputs import job_outputs_from, output_schema_of
from airflow_provider_opus.status import DEFAULT_STATUS_RULES

if TYPE_CHECKING:
    import os

    from airflow.sdk import Context

#: The XCom key Airflow gives a task's return value: never used for an output.
RETURN_VALUE_KEY = "return_value"


class OpusGetJobResultsOperator(OpusBaseOperator):
    """
    Fetch a completed job's results, its audit log and optionally its output files, for downstream tasks.

    Returns (as XCom ``return_value``) ``{"job_execution_id", "status", "results", "results_shape",
    "outputs", "output_names", "output_files", "audit_trail"}``: ``results`` is the results object
    exactly as Opus sent it, in either documented shape; ``outputs`` holds each output by display name
    (``output_names`` maps variable names to display names); ``output_files`` lists the job's file URLs
    (see :mod:`airflow_provider_opus.outputs`); ``audit_trail`` is the audit log as Opus sent it: the
    older reference's list of entries, or today's node-level object (:mod:`airflow_provider_opus.audit`).
    With ``push_outputs`` each output is also an XCom of its own, keyed by display name, so a downstream
    task takes one with ``results.output["Verdict"]``;
    :func:`~airflow_provider_opus.outputs.output_value` reads one from the return value by either name.
    With ``download_to`` the output files are written there and ``downloaded_files`` lists the paths.

    A job that is not ``COMPLETED`` fails the task: a failed one with its failed nodes or last audit
    entries, a running one with a hint to wait first.

    :param job_execution_id: the job (templated), e.g. ``run.output``.
    :param include_audit_log: also fetch the audit log (one more call); ``audit_trail`` is
        an empty list otherwise.
    :param workflow_id: the job's workflow (templated). When given, its ``jobResultsPayloadSchema``
        (one more call) supplies the display names of outputs that the results name only by variable.
        Without it such outputs keep their variable names, and the task logs a warning saying so.
    :param push_outputs: also push each output as an XCom keyed by its display name.
    :param download_to: a folder for the output files (templated): a local path, a URL such as
        ``s3://bucket/prefix`` or an ``ObjectStoragePath``. It is created and checked writable before
        any call to Opus; files keep the name in their URL (made unique).

    Takes the connection and retry arguments of :class:`~airflow_provider_opus.operators.base.OpusBaseOperator`.
    """

    template_fields = (*OpusBaseOperator.template_fields, "job_execution_id", "workflow_id", "download_to")

    def __init__(
        self,
        *,
        job_execution_id: str,
        include_audit_log: bool = True,
        workflow_id: str | None = None,
        push_outputs: bool = True,
        download_to: str | os.PathLike[str] | Any | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_execution_id = job_execution_id
        self.include_audit_log = include_audit_log
        self.workflow_id = workflow_id
        self.push_outputs = push_outputs
        self.download_to = download_to
        if download_to is not None and not rendered_later(download_to):
            as_destination(download_to, "download_to")  # a wrong type fails when the DAG is parsed

    def execute(self, context: Context) -> dict[str, Any]:
        """Fetch the results (and the audit trail); push the outputs; download the output files."""
        job_execution_id = str(self.job_execution_id)
        path = GET_JOB_RESULTS.path(**checked_job_id(job_execution_id))
        self.lineage_facts.job_execution_id = job_execution_id
        if self.workflow_id:
            self.lineage_facts.record_workflow(str(self.workflow_id))
        folder = None
        if self.download_to is not None:
            folder = as_destination(self.download_to, "download_to")
            check_writable_folder(folder, "download_to")
        body = self.hook.get_job_results(job_execution_id)  # its fields checked by the hook
        status = body.get("status") or self.hook.get_job_status(job_execution_id)
        self.lineage_facts.job_status = status
        if not DEFAULT_STATUS_RULES.is_final(status):
            raise OpusError(
                f"Opus job {job_execution_id} is still {status}: wait for it first "
                "(OpusJobSensor, or OpusExecuteJobOperator with wait_for_completion=True)."
            )
        if not DEFAULT_STATUS_RULES.is_success(status):
            raise OpusJobFailedError(job_execution_id, status, audit_tail(self.hook, job_execution_id))
        details = self.hook.get_workflow(str(self.workflow_id)) if self.workflow_id else None
        if details is not None:  # kept for lineage, which reports the workflow's name and description
            self.lineage_facts.record_workflow(str(self.workflow_id), details)
        view = job_outputs_from(body, path, output_schema_of(details))
        if not self.workflow_id and view.names and all(name == shown for name, shown in view.names.items()):
            self.log.warning(
                "Opus job %s: the results name its outputs by variable name only (%s) and no workflow_id was "
                "given, so the outputs and their XComs are keyed by variable name: a downstream "
                'results.output["<display name>"] finds nothing. Give this task workflow_id=<the job\'s '
                "workflow> to key them by the display names the Opus app shows.",
                job_execution_id,
                ", ".join(map(repr, view.names)),
            )
        self.lineage_facts.job_completed, self.lineage_facts.output_files = True, view.output_files
        self.log.info(
            "Opus job %s results (%s shape): outputs %s; %d output files",
            job_execution_id,
            view.shape,
            ", ".join(map(repr, view.outputs)) or "none",
            len(view.output_files),
        )
        audit_trail = self.hook.get_job_audit_log(job_execution_id) if self.include_audit_log else []
        value = {"job_execution_id": job_execution_id, "status": status, **view.as_xcom(), "audit_trail": audit_trail}
        if folder is not None:
            taken: set[str] = set()
            value["downloaded_files"] = [
                str(self.hook.download_file(url, folder / file_name_for(url, taken))) for url in view.output_files
            ]
        if self.push_outputs:
            ti = context["ti"]
            for name, output in view.outputs.items():
                if name == RETURN_VALUE_KEY:
                    self.log.warning("Output %r is not pushed as an XCom of its own: Airflow keeps that key", name)
                    continue
                ti.xcom_push(key=name, value=output)
        return value
