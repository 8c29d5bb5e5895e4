"""Fetch a completed Opus job's results for downstream tasks, and optionally its output files."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.api import GET_JOB_RESULTS, checked_job_id
from airflow_provider_opus.downloads import as_destination, check_writable_folder, file_name_for, job_folder_name
from airflow_provider_opus.exceptions import OpusError, OpusJobFailedError
from airflow_provider_opus.operators.base import (
    OpusBaseOperator,
    audit_tail,
    check_flags,
    check_text,
    rendered_later,
)
from airflow_provider_opus.outputs import JobOutputs, job_outputs_from, output_schema_of
from airflow_provider_opus.status import JobOutcome, StatusRules

if TYPE_CHECKING:
    import os

    from airflow.sdk import Context

#: The XCom key Airflow gives a task's return value: never used for an output.
RETURN_VALUE_KEY = "return_value"
#: XCom keys Airflow reads itself: an output under one of them would be taken for Airflow's own.
RESERVED_XCOM_KEYS = frozenset({RETURN_VALUE_KEY, "skipmixin_key"})
#: The prefix of the XCom keys of extra links (``_link_<class name>``).
LINK_XCOM_PREFIX = "_link_"
#: The longest XCom key Airflow's metadata database stores.
MAX_XCOM_KEY_CHARS = 512
#: Characters that do not survive Airflow's task SDK, which puts an XCom key into a URL path unescaped:
#: ``/`` (and ``\\``, which some servers read as one) changes the path, ``..`` with it climbs to another
#: task's XComs, ``?`` and ``#`` cut the key there, ``%`` starts an escape the server decodes.
URL_UNSAFE_KEY_CHARS = "/\\?#%"


def xcom_key_problem(key: str) -> str | None:
    """
    Tell why a name from Opus cannot be an XCom key of its own, or None when it can.

    The task SDK of every supported Airflow (3.1 to 3.3) builds the Execution API URL
    ``xcoms/{dag_id}/{run_id}/{task_id}/{key}`` with the key unescaped: a display name
    ``../victim/return_value`` wrote task ``victim``'s return value, ``Verdict?draft=1`` was stored as
    ``Verdict``. A name is used as it is or not at all: never cut down to one that may be another's.

    :param key: the output's name.
    """
    if not key.strip():
        return "it is empty"
    if key in RESERVED_XCOM_KEYS or key.startswith(LINK_XCOM_PREFIX):
        return "Airflow uses that key itself"
    if len(key) > MAX_XCOM_KEY_CHARS:
        return f"it is longer than the {MAX_XCOM_KEY_CHARS} characters of an XCom key"
    unsafe = sorted({char for char in key if char in URL_UNSAFE_KEY_CHARS})
    if unsafe or key in (".", ".."):
        held = ", ".join(map(repr, unsafe)) if unsafe else repr(key)
        return (
            f"it holds {held}, and Airflow puts an XCom key into a URL unescaped: it would be stored under "
            "another name, maybe another task's"
        )
    if any(unicodedata.category(char) == "Cc" for char in key):
        return "it holds a control character, which cannot go into a URL"
    return None


class OpusGetJobResultsOperator(OpusBaseOperator):
    """
    Fetch a completed job's results, its audit log and optionally its output files, for downstream tasks.

    Returns (as XCom ``return_value``) ``{"job_execution_id", "status", "results_shape", "outputs",
    "output_names", "output_files", "audit_trail"}``: ``outputs`` holds each output's value by display
    name (by variable name where a display name would not name it alone), ``output_names`` maps
    variable names to display names; ``output_files`` lists the job's file URLs (see
    :mod:`airflow_provider_opus.outputs`); ``audit_trail`` is the audit log as Opus sent it: the older
    reference's list of entries, or today's node-level object (:mod:`airflow_provider_opus.audit`).
    With ``include_raw_results`` the results exactly as Opus sent them are in ``results`` too.
    With ``push_outputs`` each output is also an XCom of its own, keyed as in ``outputs``, so a downstream
    task takes one with ``results.output["Verdict"]``; a name that cannot be an XCom key (``/``, ``?``,
    ``#``, ``%``, a key Airflow uses itself) is not pushed, with a warning.
    :func:`~airflow_provider_opus.outputs.output_value` reads one from the return value by either name.
    With ``download_to`` the output files are written to a folder named after the job inside it, and
    ``downloaded_files`` lists the paths.

    A job that is not ``COMPLETED`` fails the task: a failed one with its failed nodes or last audit
    entries, a running one with a hint to wait first.

    :param job_execution_id: the job (templated), e.g. ``run.output``: a non-empty string.
    :param include_audit_log: also fetch the audit log (one more call); ``audit_trail`` is
        an empty list otherwise.
    :param workflow_id: the job's workflow (templated). When given, its ``jobResultsPayloadSchema``
        (one more call) supplies the display names of outputs that the results name only by variable.
        Without it such outputs keep their variable names, and the task logs a warning saying so.
    :param push_outputs: also push each output as an XCom of its own (a second copy of each value).
    :param include_raw_results: also return the results exactly as Opus sent them, as ``results`` (a
        second copy of each value).
    :param download_to: a folder for the output files (templated): a local path, a URL such as
        ``s3://bucket/prefix`` or an ``ObjectStoragePath``. It is created and checked writable before
        any call to Opus. The files go to ``<download_to>/<job id>/``, each named as in its URL (made
        safe, shortened when long, and unique).
    :param running_statuses: more Opus statuses that mean the job is still running, e.g.
        ``["AWAITING SIGN-OFF"]`` (as on :class:`~airflow_provider_opus.operators.execute.OpusExecuteJobOperator`).
    :param failed_statuses: more Opus statuses that mean the job ended without success: the task then
        fails as for ``FAILED``.

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
        include_raw_results: bool = False,
        download_to: str | os.PathLike[str] | Any | None = None,
        running_statuses: list[str] | None = None,
        failed_statuses: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_flags(
            self.task_id,
            include_audit_log=include_audit_log,
            push_outputs=push_outputs,
            include_raw_results=include_raw_results,
        )
        # Checked when the DAG is parsed where no template can change them; all again at execute.
        if not rendered_later(job_execution_id):
            checked_job_id(job_execution_id)
        if not rendered_later(workflow_id):
            check_text(self.task_id, "workflow_id", workflow_id)
        if download_to is not None and not rendered_later(download_to):
            as_destination(download_to, "download_to")  # a wrong type fails when the DAG is parsed
        self.job_execution_id = job_execution_id
        self.include_audit_log = include_audit_log
        self.workflow_id = workflow_id
        self.push_outputs = push_outputs
        self.include_raw_results = include_raw_results
        self.download_to = download_to
        self.running_statuses = running_statuses
        self.failed_statuses = failed_statuses
        self.status_rules = StatusRules(running_statuses, failed_statuses)

    def execute(self, context: Context) -> dict[str, Any]:
        """Fetch the results (and the audit trail); push the outputs; download the output files."""
        job_execution_id = checked_job_id(self.job_execution_id)["job_execution_id"]
        check_text(self.task_id, "workflow_id", self.workflow_id)
        workflow_id = self.workflow_id.strip() if self.workflow_id else None
        path = GET_JOB_RESULTS.path(job_execution_id=job_execution_id)
        self.lineage_facts.job_execution_id = job_execution_id
        if workflow_id:
            self.lineage_facts.record_workflow(workflow_id)
        folder = None
        if self.download_to is not None:
            folder = as_destination(self.download_to, "download_to")
            check_writable_folder(folder, "download_to")
        body = self.hook.get_job_results(job_execution_id)  # its fields checked by the hook
        status = body.get("status") or self.hook.get_job_status(job_execution_id)
        self.lineage_facts.job_status = status
        self._raise_unless_completed(job_execution_id, status)
        details = self.hook.get_workflow(workflow_id) if workflow_id else None
        if workflow_id and details is not None:  # kept for lineage, which reports the workflow's name and description
            self.lineage_facts.record_workflow(workflow_id, details)
        view = job_outputs_from(body, path, output_schema_of(details))
        self._log_names(job_execution_id, view, named_by_workflow=bool(workflow_id))
        self.lineage_facts.job_completed, self.lineage_facts.output_files = True, view.output_files
        audit_trail = self.hook.get_job_audit_log(job_execution_id) if self.include_audit_log else []
        value = {
            "job_execution_id": job_execution_id,
            "status": status,
            **view.as_xcom(include_raw=self.include_raw_results),
            "audit_trail": audit_trail,
        }
        if folder is not None:
            job_folder = folder / job_folder_name(job_execution_id)
            taken: set[str] = set()
            value["downloaded_files"] = [
                str(self.hook.download_file(url, job_folder / file_name_for(url, taken))) for url in view.output_files
            ]
        if self.push_outputs:
            ti = context["ti"]
            for key, output in view.outputs.items():
                problem = xcom_key_problem(key)
                if problem is not None:
                    self.log.warning(
                        "Output %r of Opus job %s is not pushed as an XCom of its own: %s. It is in this task's "
                        "return value: output_value(<return value>, %r) reads it.",
                        key,
                        job_execution_id,
                        problem,
                        key,
                    )
                    continue
                ti.xcom_push(key=key, value=output)
        return value

    def _raise_unless_completed(self, job_execution_id: str, status: str) -> None:
        """Fail the task for a job that is not ``COMPLETED``, by this task's status rules."""
        outcome = self.status_rules.outcome(status)
        if outcome is JobOutcome.SUCCEEDED:
            return
        if outcome is JobOutcome.FAILED:
            raise OpusJobFailedError(job_execution_id, status, audit_tail(self.hook, job_execution_id))
        wait = "wait for it first (OpusJobSensor, or OpusExecuteJobOperator with wait_for_completion=True)"
        if outcome is JobOutcome.UNKNOWN:
            raise OpusError(
                f"Opus job {job_execution_id} reports status {status!r}, which this provider does not know. If it "
                f"means the job ended, pass failed_statuses=[{status!r}] to this task; if it is still running, {wait} "
                f"with running_statuses=[{status!r}]."
            )
        raise OpusError(f"Opus job {job_execution_id} is still {status}: {wait}.")

    def _log_names(self, job_execution_id: str, view: JobOutputs, *, named_by_workflow: bool) -> None:
        """Log the outputs, and what a reader should know about their names."""
        if not named_by_workflow and view.names and all(name == shown for name, shown in view.names.items()):
            self.log.warning(
                "Opus job %s: the results name its outputs by variable name only (%s) and no workflow_id was "
                "given, so the outputs and their XComs are keyed by variable name: a downstream "
                'results.output["<display name>"] finds nothing. Give this task workflow_id=<the job\'s '
                "workflow> to key them by the display names the Opus app shows.",
                job_execution_id,
                ", ".join(map(repr, view.names)),
            )
        for warning in view.warnings:
            self.log.warning("Opus job %s: %s", job_execution_id, warning)
        self.log.info(
            "Opus job %s results (%s shape): outputs %s; %d output files",
            job_execution_id,
            view.shape,
            ", ".join(map(repr, view.outputs)) or "none",
            len(view.output_files),
        )
