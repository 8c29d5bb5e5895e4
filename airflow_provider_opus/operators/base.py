"""The task side of the provider: what every Opus task shares, and how a task waits for an Opus job.

:class:`OpusBaseOperator` holds the connection and retry arguments and the hook of every Opus
operator and the sensor. :class:`OpusJobWaitingOperator` adds what the execute operator and
the sensor share: check a job once, then finish or defer to
:class:`~airflow_provider_opus.triggers.opus.OpusJobTrigger`, and resume from its event.
The module-level functions say what the end of a job means for a task: only ``COMPLETED``
succeeds, anything else fails with the job's last audit entries.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_opus.api import GET_JOB_RESULTS, checked_job_id, output_files_from, results_from
from airflow_provider_opus.compat import AirflowTaskTimeout
from airflow_provider_opus.exceptions import OpusError, OpusJobFailedError, OpusJobTimeoutError, error_from_event
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.status import DEFAULT_STATUS_RULES, StatusRules
from airflow_provider_opus.triggers.opus import OpusJobTrigger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

log = logging.getLogger(__name__)

#: How many audit entries an error message carries.
AUDIT_TAIL_LENGTH = 5

#: How long the execute operator and the sensor wait for a job by default: 7 days.
DEFAULT_TIMEOUT = timedelta(days=7).total_seconds()


class OpusBaseOperator(BaseOperator):
    """
    Hold what every Opus task shares: the connection and retry arguments, and the hook.

    Subclasses add their own template fields to ``template_fields`` of this class. The
    arguments below are taken by every Opus operator and the sensor (and can come from
    ``default_args``).

    :param opus_conn_id: the Airflow connection of type ``opus`` (templated).
    :param opus_retry_limit: retries of a failed Opus API call where retrying is safe
        (Airflow's own ``retries`` retry the whole task).
    :param opus_retry_delay: base delay between those retries in seconds.
    """

    template_fields: Sequence[str] = ("opus_conn_id",)
    ui_color = "#e3ecfa"

    def __init__(
        self,
        *,
        opus_conn_id: str = OpusHook.default_conn_name,
        opus_retry_limit: int = 3,
        opus_retry_delay: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.opus_conn_id = opus_conn_id
        self.opus_retry_limit = opus_retry_limit
        self.opus_retry_delay = opus_retry_delay

    @cached_property
    def hook(self) -> OpusHook:
        """The hook for this task's connection (made on first use, after templates are rendered)."""
        return OpusHook(self.opus_conn_id, retry_limit=self.opus_retry_limit, retry_delay=self.opus_retry_delay)


class OpusJobWaitingOperator(OpusBaseOperator):
    """
    Wait for an Opus job: the base of the execute operator and the sensor.

    A subclass waits in the triggerer with :meth:`defer_while_running`, resumes in
    :meth:`execute_complete`, and says in :meth:`on_job_completed` what a completed job means
    for it (by default: its outlets' asset events carry the job id and output files). What
    each status means is decided by :mod:`airflow_provider_opus.status`.

    :param running_statuses: more Opus statuses that mean the job is still running or waiting,
        e.g. ``["AWAITING SIGN-OFF"]``. Compared normalised (case, ``_``, ``-``, spaces).
    :param failed_statuses: more Opus statuses that mean the job ended without success. A
        status in neither list nor the built-in ones keeps the wait going, with a warning,
        until the deadline; only ``COMPLETED`` is ever success.
    """

    def __init__(
        self,
        *,
        running_statuses: list[str] | None = None,
        failed_statuses: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.running_statuses = running_statuses
        self.failed_statuses = failed_statuses
        self.status_rules = StatusRules(running_statuses, failed_statuses)
        self._warned_statuses: set[str] = set()

    def job_ended(self, job_execution_id: str, status: str) -> bool:
        """
        Tell whether waiting for the job is over: False while it runs (or its status is unknown), True on ``COMPLETED``.

        :param job_execution_id: the job.
        :param status: its status as Opus sent it.
        :raises OpusJobFailedError: for any other final status, with the audit tail.
        """
        outcome = self.status_rules.poll_outcome(job_execution_id, status, self._warned_statuses, self.log)
        if not outcome.is_final:
            return False
        raise_unless_completed(self.hook, job_execution_id, status)
        return True

    def defer_while_running(
        self,
        context: Context,
        job_execution_id: str,
        *,
        poll_interval: float,
        max_poll_interval: float | None,
        timeout: float | None,
    ) -> None:
        """
        Check the job once; return if it completed, else defer to :class:`OpusJobTrigger` while it runs.

        A job that already ended does not defer. The trigger resumes the task in :meth:`execute_complete`.
        Its deadline is the earlier of ``timeout`` and the task's ``execution_timeout`` counted from
        the start of the try: Airflow does not apply ``execution_timeout`` to a deferred task itself.

        :param context: the task's context (for the start of the try).
        :param job_execution_id: the job.
        :param poll_interval: seconds between status checks.
        :param max_poll_interval: the longest wait between checks as the wait grows, or None.
        :param timeout: seconds from now to wait at most, or None.
        :raises OpusJobFailedError: the job already ended otherwise than ``COMPLETED``.
        """
        status = self.hook.get_job_status(job_execution_id)
        self.log.info("Opus job %s is %s", job_execution_id, status)
        if self.job_ended(job_execution_id, status):
            return
        deadline, end_time = self._deadline(context, timeout)
        self.defer(
            trigger=OpusJobTrigger(
                job_execution_id=job_execution_id,
                opus_conn_id=self.opus_conn_id,
                poll_interval=poll_interval,
                end_time=end_time,
                retry_limit=self.opus_retry_limit,
                retry_delay=self.opus_retry_delay,
                max_poll_interval=max_poll_interval,
                running_statuses=self.status_rules.added_running,
                failed_statuses=self.status_rules.added_failed,
            ),
            method_name="execute_complete",
            kwargs={"deadline": deadline},
        )

    def _deadline(self, context: Context, timeout: float | None) -> tuple[str | None, float | None]:
        """Return which deadline comes first (``timeout`` or ``execution_timeout``) and when, as Unix time."""
        deadlines: dict[str, float] = {}
        if timeout is not None:
            deadlines["timeout"] = time.time() + timeout
        if self.execution_timeout is not None:
            try_start = getattr(context.get("ti"), "start_date", None)
            started = try_start.timestamp() if try_start is not None else time.time()
            deadlines["execution_timeout"] = started + self.execution_timeout.total_seconds()
        if not deadlines:
            return None, None
        return min(deadlines.items(), key=lambda item: item[1])

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, deadline: str | None = None
    ) -> Any:
        """
        Resume after the trigger fired: succeed only on ``COMPLETED``.

        :param event: the trigger's event.
        :param deadline: which deadline the trigger kept: ``timeout`` or ``execution_timeout``.
        :return: the jobExecutionId.
        """
        try:
            job_execution_id = check_trigger_event(self.hook, event)
        except OpusJobTimeoutError as exc:
            raise self.deadline_error(exc, deadline) from None
        self.on_job_completed(context, job_execution_id)
        return job_execution_id

    def deadline_error(self, exc: OpusJobTimeoutError, deadline: str | None) -> BaseException:
        """
        Return the error for a wait that reached its deadline; the job keeps running in Opus.

        Past ``execution_timeout`` it is Airflow's ``AirflowTaskTimeout`` (a task retry reattaches
        to the job); past ``timeout`` the trigger's own error.

        :param exc: the timeout the trigger reported.
        :param deadline: which deadline it was.
        """
        if deadline == "execution_timeout":
            return AirflowTaskTimeout(f"execution_timeout ({self.execution_timeout}) passed: {exc}")
        return exc

    def on_job_completed(self, context: Context, job_execution_id: str) -> None:
        """
        Finish the task for a completed job: put the job id and output files on the outlets' asset events.

        :param job_execution_id: the job.
        """
        record_asset_events(context, self.outlets, job_execution_id, self.hook)


def audit_tail(hook: OpusHook, job_execution_id: str) -> list[dict]:
    """
    Return the last audit entries of a job, or none when the audit log cannot be read.

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
    if not DEFAULT_STATUS_RULES.is_success(status):
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
    if outcome == "success" and isinstance(opus_status, str) and DEFAULT_STATUS_RULES.is_success(opus_status):
        log.info("%s", event.get("message", f"Opus job {job_execution_id} completed"))
        return job_execution_id
    if outcome == "failed":
        raise OpusJobFailedError(job_execution_id, str(opus_status), audit_tail(hook, job_execution_id))
    if outcome == "timeout":
        raise OpusJobTimeoutError(job_execution_id, opus_status)
    final_error = error_from_event(event) if outcome == "error" else None
    if final_error is not None:
        raise final_error  # e.g. a refused key: final, as in a wait in a worker
    raise OpusError(f"Waiting for Opus job {job_execution_id or '?'} failed: {event.get('message', event)!r}")


def record_asset_events(context: Context, outlets: list[Any], job_execution_id: str, hook: OpusHook) -> None:
    """
    Put the job id and its output files on the asset events of the task's outlets.

    :param context: the running task's context, whose ``outlet_events`` are written.
    :param outlets: the task's outlets.
    :param job_execution_id: the job.
    :param hook: the hook used to read the results.
    """
    if not outlets:
        return
    path = GET_JOB_RESULTS.path(**checked_job_id(job_execution_id))
    results = results_from(hook.get_job_results(job_execution_id), path)
    extra: dict[str, Any] = {"job_execution_id": job_execution_id, "output_files": output_files_from(results, path)}
    outlet_events = context["outlet_events"]
    for outlet in outlets:
        outlet_events[outlet].extra.update(extra)
