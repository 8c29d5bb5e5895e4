"""What the operators and the sensor share: their hook, and what the end of an Opus job means for a task."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.api import JobStatus
from airflow_provider_opus.exceptions import OpusError, OpusJobFailedError, OpusJobTimeoutError
from airflow_provider_opus.hooks.opus import OpusHook

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class _OpusTaskMixin:
    """The connection and retry settings every Opus operator and the sensor share."""

    opus_conn_id: str
    opus_retry_limit: int
    opus_retry_delay: float

    @cached_property
    def hook(self) -> OpusHook:
        """The hook for this task's connection."""
        return OpusHook(self.opus_conn_id, retry_limit=self.opus_retry_limit, retry_delay=self.opus_retry_delay)


#: How many audit entries an error message carries.
AUDIT_TAIL_LENGTH = 5


def audit_tail(hook: OpusHook, job_execution_id: str) -> list[dict]:
    """
    The last audit entries of a job, or none when the audit log cannot be read.

    Only used to explain a failure, so a failure to read it must not hide the real error.

    :param hook: the hook to call.
    :param job_execution_id: the job.
    """
    try:
        return hook.get_job_audit_log(job_execution_id)[-AUDIT_TAIL_LENGTH:]
    except OpusError as exc:
        log.warning("Could not read the audit log of Opus job %s: %s", job_execution_id, exc)
        return []


def raise_unless_completed(hook: OpusHook, job_execution_id: str, status: str) -> None:
    """
    Fail the task unless ``status`` is ``COMPLETED``; the error carries the audit tail.

    :param hook: the hook used to read the audit log.
    :param job_execution_id: the job.
    :param status: its final status.
    :raises OpusJobFailedError: for ``FAILED`` and any other status that is not success.
    """
    if not JobStatus.is_success(status):
        raise OpusJobFailedError(job_execution_id, status, audit_tail(hook, job_execution_id))


def check_trigger_event(hook: OpusHook, event: dict[str, Any] | None) -> str:
    """
    Read an :class:`~airflow_provider_opus.triggers.opus.OpusJobTrigger` event; fail closed on anything but success.

    :param hook: the hook used to read the audit log on failure.
    :param event: the event payload.
    :return: the job's id.
    """
    if not isinstance(event, dict) or "status" not in event:
        raise OpusError(f"Unexpected event from OpusJobTrigger: {event!r}")
    job_execution_id = str(event.get("job_execution_id", ""))
    opus_status = event.get("opus_status")
    outcome = event["status"]
    if outcome == "success" and opus_status == JobStatus.COMPLETED.value:
        log.info("%s", event.get("message", f"Opus job {job_execution_id} completed"))
        return job_execution_id
    if outcome == "failed":
        raise OpusJobFailedError(job_execution_id, str(opus_status), audit_tail(hook, job_execution_id))
    if outcome == "timeout":
        raise OpusJobTimeoutError(job_execution_id, opus_status)
    raise OpusError(f"Waiting for Opus job {job_execution_id or '?'} failed: {event.get('message', event)!r}")


def record_asset_events(context: Context, outlets: list[Any], job_execution_id: str, hook: OpusHook) -> None:
    """
    Put the job id and its output files on the asset events of the task's outlets.

    :param context: the task's context.
    :param outlets: the task's outlets.
    :param job_execution_id: the job.
    :param hook: the hook used to read the results.
    """
    if not outlets:
        return
    results = hook.get_job_results(job_execution_id).get("results") or {}
    extra: dict[str, Any] = {
        "job_execution_id": job_execution_id,
        "output_files": list(results.get("outputFiles") or []),
    }
    outlet_events = context["outlet_events"]
    for outlet in outlets:
        outlet_events[outlet].extra.update(extra)
