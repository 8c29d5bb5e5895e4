"""Waiting for an Opus job in poke, reschedule or deferrable mode."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_provider_opus.api import JobStatus
from airflow_provider_opus.exceptions import OpusInvalidArgumentError, OpusJobTimeoutError
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.jobs import (
    _OpusTaskMixin,
    check_trigger_event,
    raise_unless_completed,
    record_asset_events,
)
from airflow_provider_opus.polling import check_poll_intervals, next_poll_wait
from airflow_provider_opus.triggers.opus import OpusJobTrigger

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable

    from airflow.sdk import Context


class OpusJobSensor(_OpusTaskMixin, BaseSensorOperator):
    """
    Waits for an Opus job to finish; succeeds on ``COMPLETED``.

    ``FAILED`` or any other final status fails the task at once, without Airflow retries,
    with the last audit entries in the error. With ``outlets``, the asset events carry
    ``job_execution_id`` and ``output_files``.

    :param job_execution_id: the job to wait for (templated), e.g. ``run.output`` of an
        :class:`~airflow_provider_opus.operators.opus.OpusExecuteJobOperator`.
    :param opus_conn_id: the Airflow connection of type ``opus``.
    :param deferrable: wait in the triggerer instead of a worker slot (after one status check).
    :param poke_interval: seconds between status checks, in every mode.
    :param max_poll_interval: let the wait between status checks grow with the time waited
        (a tenth of it), from ``poke_interval`` up to this many seconds, in every mode; None
        (the default) keeps ``poke_interval``. Use it instead of Airflow's ``exponential_backoff``,
        which the deferrable mode would not follow.
    :param timeout: seconds to wait in all before the sensor fails (default 7 days). The job
        keeps running in Opus: it has no cancel call.
    :param mode: ``poke`` (hold the worker slot) or ``reschedule`` (free it between checks).
    :param opus_retry_limit: retries of a failed Opus API call.
    :param opus_retry_delay: base delay between those retries in seconds.
    """

    template_fields = ("job_execution_id",)
    ui_color = "#e3ecfa"

    def __init__(
        self,
        *,
        job_execution_id: str,
        opus_conn_id: str = OpusHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 30,
        timeout: float = timedelta(days=7).total_seconds(),
        mode: str = "poke",
        max_poll_interval: float | None = None,
        opus_retry_limit: int = 3,
        opus_retry_delay: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        check_poll_intervals(poke_interval, max_poll_interval, "poke_interval", task_id=self.task_id)
        if max_poll_interval is not None and self.exponential_backoff:
            raise OpusInvalidArgumentError(
                f"Task {self.task_id!r}: give max_poll_interval or exponential_backoff=True, not both: "
                "max_poll_interval grows the interval in every mode, including deferrable"
            )
        self.max_poll_interval = max_poll_interval
        self.job_execution_id = job_execution_id
        self.opus_conn_id = opus_conn_id
        self.deferrable = deferrable
        self.opus_retry_limit = opus_retry_limit
        self.opus_retry_delay = opus_retry_delay

    def poke(self, context: Context) -> bool:
        """
        One status check: False while running, True on ``COMPLETED``, an error otherwise.

        :param context: the task's context.
        """
        status = self.hook.get_job_status(self.job_execution_id)
        self.log.info("Opus job %s is %s", self.job_execution_id, status)
        if not JobStatus.is_terminal(status):
            return False
        raise_unless_completed(self.hook, self.job_execution_id, status)
        record_asset_events(context, self.outlets, self.job_execution_id, self.hook)
        return True

    def execute(self, context: Context) -> Any:
        """
        Wait for the job: defer after one status check when deferrable, else poke as configured.

        :param context: the task's context.
        """
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        self.defer(
            trigger=OpusJobTrigger(
                job_execution_id=self.job_execution_id,
                opus_conn_id=self.opus_conn_id,
                poll_interval=self.poke_interval,
                end_time=time.time() + self.timeout,
                retry_limit=self.opus_retry_limit,
                retry_delay=self.opus_retry_delay,
                max_poll_interval=self.max_poll_interval,
            ),
            method_name="execute_complete",
        )

    def _get_next_poke_interval(
        self,
        started_at: datetime.datetime | float,
        run_duration: Callable[[], float],
        poke_count: int,
    ) -> float:
        # BaseSensorOperator asks this in poke and reschedule mode; run_duration counts from the
        # first poke, across reschedules, so the interval keeps growing after each reschedule.
        if self.max_poll_interval is None:
            return super()._get_next_poke_interval(started_at, run_duration, poke_count)
        waited = run_duration()
        wait = next_poll_wait(self.poke_interval, self.max_poll_interval, waited)
        return max(0.0, min(wait, self.timeout - waited))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        """
        Resume after the trigger fired: succeed only on ``COMPLETED``.

        :param context: the task's context.
        :param event: the trigger's event.
        """
        try:
            job_execution_id = check_trigger_event(self.hook, event)
        except OpusJobTimeoutError as exc:
            # The same failure as a sensor timing out in poke or reschedule mode: no retries.
            raise AirflowSensorTimeout(str(exc)) from None
        record_asset_events(context, self.outlets, job_execution_id, self.hook)
