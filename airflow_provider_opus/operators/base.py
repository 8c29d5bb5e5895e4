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
import math
import os
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowTaskTimeout
from airflow.sdk import BaseOperator

from airflow_provider_opus.api import GET_JOB_RESULTS, checked_job_id
from airflow_provider_opus.audit import failure_details
from airflow_provider_opus.exceptions import (
    OpusError,
    OpusInvalidArgumentError,
    OpusJobFailedError,
    OpusJobTimeoutError,
    describe_value,
    error_from_event,
)
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.lineage import LineageFacts, operator_lineage, read_missing_facts, task_error
from airflow_provider_opus.outputs import job_outputs_from, output_schema_of
from airflow_provider_opus.status import DEFAULT_STATUS_RULES, StatusRules
from airflow_provider_opus.triggers.opus import OpusJobTrigger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

log = logging.getLogger(__name__)

#: How long the execute operator and the sensor wait for a job by default: 7 days (one HTTP call's
#: limit is the connection's, DEFAULT_CALL_TIMEOUT in connection.py).
DEFAULT_JOB_TIMEOUT = timedelta(days=7).total_seconds()


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
        if not rendered_later(opus_conn_id):
            check_text(self.task_id, "opus_conn_id", opus_conn_id, optional=False)
        _check_retry_arguments(self.task_id, opus_retry_limit, opus_retry_delay)
        self.opus_conn_id = opus_conn_id
        self.opus_retry_limit = opus_retry_limit
        self.opus_retry_delay = opus_retry_delay
        #: What lineage reports about this run, recorded by execute (see :mod:`airflow_provider_opus.lineage`).
        self.lineage_facts = LineageFacts()

    @cached_property
    def hook(self) -> OpusHook:
        """The hook for this task's connection (made on first use, after templates are rendered)."""
        return OpusHook(self.opus_conn_id, retry_limit=self.opus_retry_limit, retry_delay=self.opus_retry_delay)

    # The OpenLineage provider's listener calls these two after the task ran (only when it is installed).

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """
        Return the task's lineage: the files and workflow it read, the files it produced, the job's ids.

        :param task_instance: the finished task instance.
        """
        read_missing_facts(self.lineage_facts, self.opus_conn_id)
        return operator_lineage(self.lineage_facts)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        """
        Return the lineage of a failed task: what it knew, and the error with the job's last audit entries.

        :param task_instance: the failed task instance.
        """
        self.lineage_facts.record_failure(task_error(task_instance))
        read_missing_facts(self.lineage_facts, self.opus_conn_id)
        return operator_lineage(self.lineage_facts)


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

    def handle_status(self, job_execution_id: str, status: str) -> bool:
        """
        Record the job's status for lineage and act on it: False while it runs (or is unknown), True on ``COMPLETED``.

        :param job_execution_id: the job.
        :param status: its status as Opus sent it.
        :raises OpusJobFailedError: for any other final status, with the audit tail.
        """
        self.lineage_facts.job_execution_id, self.lineage_facts.job_status = job_execution_id, status
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
        if self.handle_status(job_execution_id, status):
            return
        limit, end_time = self._first_limit(context, timeout)
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
            # The task resumes as a new object: what lineage needs from before the wait goes along.
            kwargs={"limit": limit, "lineage": self.lineage_facts.to_dict()},
        )

    def _first_limit(self, context: Context, timeout: float | None) -> tuple[str | None, float | None]:
        """Return which limit ends the wait first (``timeout`` or ``execution_timeout``) and when, as Unix time."""
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
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        limit: str | None = None,
        lineage: dict[str, Any] | None = None,
        deadline: str | None = None,
    ) -> Any:
        """
        Resume after the trigger fired: succeed only on ``COMPLETED``.

        :param event: the trigger's event.
        :param limit: which limit the trigger kept, by the argument that set it: ``timeout`` or ``execution_timeout``.
        :param lineage: the lineage facts recorded before the wait.
        :param deadline: ``limit`` under its earlier name: a task deferred by a provider version from before
            the rename resumes with the kwargs stored then.
        :return: the jobExecutionId.
        """
        limit = limit or deadline
        if lineage is not None:  # None: deferred by a provider version without lineage, or by dag.test()
            self.lineage_facts = LineageFacts.from_dict(lineage)
        if isinstance(event, dict) and event.get("job_execution_id"):
            self.lineage_facts.job_execution_id = str(event["job_execution_id"])
            if isinstance(event.get("opus_status"), str):
                self.lineage_facts.job_status = event["opus_status"]
        try:
            job_execution_id = check_trigger_event(self.hook, event)
        except OpusJobTimeoutError as exc:
            raise self.timeout_error(exc, limit) from None
        self.on_job_completed(context, job_execution_id)
        return job_execution_id

    def timeout_error(self, exc: OpusJobTimeoutError, limit: str | None) -> BaseException:
        """
        Return the error for a wait that reached its limit; the job keeps running in Opus.

        Past ``execution_timeout`` it is Airflow's ``AirflowTaskTimeout`` (a task retry reattaches
        to the job); past ``timeout`` the trigger's own error.

        :param exc: the timeout the trigger reported.
        :param limit: which limit it was: ``timeout`` or ``execution_timeout``.
        """
        if limit == "execution_timeout":
            return AirflowTaskTimeout(f"execution_timeout ({self.execution_timeout}) passed: {exc}")
        return exc

    def on_job_completed(self, context: Context, job_execution_id: str) -> None:
        """
        Finish the task for a completed job: put the job id and output files on the outlets' asset events.

        :param job_execution_id: the job.
        """
        facts = self.lineage_facts
        if self.outlets:
            output_schema = None
            if facts.workflow_id:  # the workflow's jobResultsPayloadSchema names the outputs
                details = self.hook.get_workflow(facts.workflow_id)
                facts.record_workflow(facts.workflow_id, details)
                output_schema = output_schema_of(details)
            facts.output_files = record_asset_events(context, self.outlets, job_execution_id, self.hook, output_schema)
        facts.job_execution_id, facts.job_completed = job_execution_id, True


def audit_tail(hook: OpusHook, job_execution_id: str) -> list[dict]:
    """
    Return what a job's audit log says of its failure (:func:`~airflow_provider_opus.audit.failure_details`).

    Only used to explain a failure, so a failure to read the log must not hide the real error: it gives none.

    :param hook: the hook to call.
    :param job_execution_id: the job.
    """
    try:
        return failure_details(hook.get_job_audit_log(job_execution_id))
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


def record_asset_events(
    context: Context,
    outlets: list[Any],
    job_execution_id: str,
    hook: OpusHook,
    output_schema: dict[str, Any] | None = None,
) -> list[str]:
    """
    Put the job id, its outputs and its output files on the asset events of the task's outlets.

    :param context: the running task's context, whose ``outlet_events`` are written.
    :param outlets: the task's outlets.
    :param job_execution_id: the job.
    :param hook: the hook used to read the results.
    :param output_schema: the workflow's ``jobResultsPayloadSchema``, which names the outputs.
    :return: the output files.
    """
    path = GET_JOB_RESULTS.path(**checked_job_id(job_execution_id))
    view = job_outputs_from(hook.get_job_results(job_execution_id), path, output_schema)
    extra: dict[str, Any] = {
        "job_execution_id": job_execution_id,
        "outputs": view.outputs,
        "output_files": view.output_files,
    }
    outlet_events = context["outlet_events"]
    for outlet in outlets:
        outlet_events[outlet].extra.update(extra)
    return view.output_files


def _check_retry_arguments(task_id: str, retry_limit: Any, retry_delay: Any) -> None:
    """Raise unless the API-call retry arguments are a count and a number of seconds."""
    if not isinstance(retry_limit, int) or isinstance(retry_limit, bool) or retry_limit < 0:
        raise OpusInvalidArgumentError(
            f"Task {task_id!r}: opus_retry_limit must be a whole number, 0 or more, got {describe_value(retry_limit)}"
        )
    number = isinstance(retry_delay, (int, float)) and not isinstance(retry_delay, bool)
    if not number or not math.isfinite(retry_delay) or retry_delay < 0:
        raise OpusInvalidArgumentError(
            f"Task {task_id!r}: opus_retry_delay must be a number of seconds, 0 or more, "
            f"got {describe_value(retry_delay)}"
        )


def check_flags(task_id: str, **flags: Any) -> None:
    """
    Raise unless each argument is True or False: a string such as ``"false"`` would be read as true.

    :param task_id: the task, for the message.
    :param flags: the arguments by name.
    :raises OpusInvalidArgumentError: naming the first that is not a bool.
    """
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise OpusInvalidArgumentError(
                f"Task {task_id!r}: {name} must be True or False, got {describe_value(value)}"
            )


def check_text(task_id: str, name: str, value: Any, *, optional: bool = True) -> None:
    """
    Raise unless ``value`` is a non-empty string, or None when ``optional``.

    Call it when the DAG is parsed only for a value no template changes (:func:`rendered_later`), and
    again at execute.

    :param task_id: the task, for the message.
    :param name: the argument's name.
    :param value: its value.
    :raises OpusInvalidArgumentError: naming the argument and what it got.
    """
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        alternative = " or None" if optional else ""
        raise OpusInvalidArgumentError(
            f"Task {task_id!r}: {name} must be a non-empty string{alternative}, got {describe_value(value)}"
        )


def rendered_later(value: Any) -> bool:
    """
    Tell whether a templated argument may still change before execute: a string (a template), an XComArg, a callable.

    Anything else is checked when the DAG is parsed. A blank string cannot render to anything else.
    """
    if isinstance(value, str):
        return bool(value.strip())
    # As Airflow's templater: a value with resolve() (an XComArg) is resolved, a path is not.
    return callable(value) or (not isinstance(value, os.PathLike) and hasattr(value, "resolve"))
