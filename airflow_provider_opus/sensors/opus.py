"""Waiting for an Opus job in poke, reschedule or deferrable mode."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, conf
from airflow.sdk import BaseSensorOperator

from airflow_provider_opus.api import checked_job_id
from airflow_provider_opus.compat import task_state_store
from airflow_provider_opus.exceptions import OpusInvalidArgumentError, OpusJobTimeoutError
from airflow_provider_opus.operators.base import (
    DEFAULT_JOB_TIMEOUT,
    OpusBaseOperator,
    OpusJobWaitingOperator,
    check_flags,
    rendered_later,
)
from airflow_provider_opus.polling import check_poll_intervals, check_timeout, next_poll

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context


#: Task state key of the unknown statuses a reschedule-mode sensor already warned about.
WARNED_STATUSES_KEY = "opus_warned_statuses"


class OpusJobSensor(OpusJobWaitingOperator, BaseSensorOperator):
    """
    Wait for an Opus job to finish; succeed on ``COMPLETED``.

    ``FAILED`` or any other final status fails the task at once, without Airflow retries,
    with the last audit entries in the error. With ``outlets``, the asset events carry
    ``job_execution_id`` and ``output_files``.

    :param job_execution_id: the job to wait for (templated), e.g. ``run.output`` of an
        :class:`~airflow_provider_opus.operators.execute.OpusExecuteJobOperator`.
    :param deferrable: wait in the triggerer instead of a worker slot (after one status check).
    :param poke_interval: seconds (or a timedelta) between status checks, in every mode.
    :param max_poll_interval: let the wait between status checks grow with the time waited
        (a tenth of it), from ``poke_interval`` up to this many seconds, in every mode; None
        (the default) keeps ``poke_interval``. Use it instead of Airflow's ``exponential_backoff``,
        which the deferrable mode would not follow.
    :param timeout: seconds (or a timedelta) to wait in all before the sensor fails (default 7 days,
        at most 365 days; None takes Airflow's ``[sensors] default_timeout``). The job keeps running
        in Opus: it has no cancel call.
    :param mode: ``poke`` (hold the worker slot) or ``reschedule`` (free it between checks).

    Takes the connection and retry arguments of :class:`~airflow_provider_opus.operators.base.OpusBaseOperator`.
    """

    template_fields = (*OpusBaseOperator.template_fields, "job_execution_id")

    def __init__(
        self,
        *,
        job_execution_id: str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float | datetime.timedelta = 30,
        timeout: float | datetime.timedelta | None = DEFAULT_JOB_TIMEOUT,
        mode: str = "poke",
        max_poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        # Checked before BaseSensorOperator, which turns NaN, "60" or 1e300 into a bare ValueError or
        # OverflowError; timedeltas are taken as Airflow's sensors take them.
        task_id = kwargs.get("task_id")
        check_poll_intervals(_seconds(poke_interval), max_poll_interval, "poke_interval", task_id=task_id)
        check_timeout(_seconds(timeout), task_id)
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        if max_poll_interval is not None and self.exponential_backoff:
            raise OpusInvalidArgumentError(
                f"Task {self.task_id!r}: give max_poll_interval or exponential_backoff=True, not both: "
                "max_poll_interval grows the interval in every mode, including deferrable"
            )
        if not rendered_later(job_execution_id):  # a template is checked by the hook once rendered
            checked_job_id(job_execution_id)
        check_flags(self.task_id, deferrable=deferrable)
        self.max_poll_interval = max_poll_interval
        self.job_execution_id = job_execution_id
        self.deferrable = deferrable

    def poke(self, context: Context) -> bool:
        """Check the status once: False while running, True on ``COMPLETED``, an error otherwise."""
        status = self.hook.get_job_status(self.job_execution_id)
        self.log.info("Opus job %s is %s", self.job_execution_id, status)
        store = task_state_store(context) if self.reschedule else None
        if store is None:
            ended = self.handle_status(self.job_execution_id, status)
        else:
            ended = self._handle_status_warning_once_across_reschedules(store, status)
        if not ended:
            return False
        self.on_job_completed(context, self.job_execution_id)
        return True

    def _handle_status_warning_once_across_reschedules(self, store: Any, status: str) -> bool:
        # Each reschedule runs a new task object: the unknown statuses already warned about in this
        # wait are kept in the task state, so the warning appears once per wait as in the other modes.
        saved = store.get(WARNED_STATUSES_KEY)
        if isinstance(saved, dict) and saved.get("job_execution_id") == self.job_execution_id:
            self._warned_statuses.update(str(word) for word in saved.get("statuses") or [])
        warned_before = len(self._warned_statuses)
        ended = True  # a failed job (handle_status raises) ends the wait too
        try:
            ended = self.handle_status(self.job_execution_id, status)
            if not ended and len(self._warned_statuses) > warned_before:
                saved = {"job_execution_id": self.job_execution_id, "statuses": sorted(self._warned_statuses)}
                store.set(WARNED_STATUSES_KEY, saved)
        finally:
            if ended and self._warned_statuses:
                store.delete(WARNED_STATUSES_KEY)
        return ended

    def execute(self, context: Context) -> Any:
        """Wait for the job: defer after one status check when deferrable, else poke as configured."""
        if not self.deferrable:
            return super().execute(context)
        self.defer_while_running(
            context,
            self.job_execution_id,
            poll_interval=self.poke_interval,
            max_poll_interval=self.max_poll_interval,
            timeout=self.timeout,
        )
        self.on_job_completed(context, self.job_execution_id)
        return None

    def _get_next_poke_interval(
        self,
        started_at: datetime.datetime | float,
        run_duration: Callable[[], float],
        poke_count: int,
    ) -> float:
        # BaseSensorOperator asks this in poke and reschedule mode; run_duration counts from the
        # first poke, across reschedules, so the interval keeps growing after each reschedule. The
        # deadline rule is the trigger's and the blocking wait's: the last check comes at the timeout,
        # after which BaseSensorOperator raises AirflowSensorTimeout. exponential_backoff=True keeps
        # Airflow's own rule, as a DAG author asking for it expects.
        if self.exponential_backoff:
            return super()._get_next_poke_interval(started_at, run_duration, poke_count)
        waited = run_duration()
        return next_poll(self.poke_interval, self.max_poll_interval, waited, self.timeout - waited).wait

    def timeout_error(self, exc: OpusJobTimeoutError, limit: str | None) -> BaseException:
        """
        Return the error for a wait that reached its limit.

        Past the sensor's ``timeout`` it is the same failure as in poke or reschedule mode
        (``AirflowSensorTimeout``, no retries); past ``execution_timeout``, Airflow's task timeout.

        :param exc: the timeout the trigger reported.
        :param limit: which limit it was: ``timeout`` or ``execution_timeout``.
        """
        if limit == "execution_timeout":
            return super().timeout_error(exc, limit)
        return AirflowSensorTimeout(str(exc))


def _seconds(value: Any) -> Any:
    """Return a timedelta as seconds, anything else as it is (to be checked as seconds)."""
    return value.total_seconds() if isinstance(value, datetime.timedelta) else value
