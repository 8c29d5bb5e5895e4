"""Waiting for an Opus job in poke, reschedule or deferrable mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_provider_opus.exceptions import OpusInvalidArgumentError, OpusJobTimeoutError
from airflow_provider_opus.operators.base import DEFAULT_TIMEOUT, OpusBaseOperator, OpusJobWaitingOperator
from airflow_provider_opus.polling import check_poll_intervals, next_poll

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable

    from airflow.sdk import Context


class OpusJobSensor(OpusJobWaitingOperator, BaseSensorOperator):
    """
    Wait for an Opus job to finish; succeed on ``COMPLETED``.

    ``FAILED`` or any other final status fails the task at once, without Airflow retries,
    with the last audit entries in the error. With ``outlets``, the asset events carry
    ``job_execution_id`` and ``output_files``.

    :param job_execution_id: the job to wait for (templated), e.g. ``run.output`` of an
        :class:`~airflow_provider_opus.operators.opus.OpusExecuteJobOperator`.
    :param deferrable: wait in the triggerer instead of a worker slot (after one status check).
    :param poke_interval: seconds between status checks, in every mode.
    :param max_poll_interval: let the wait between status checks grow with the time waited
        (a tenth of it), from ``poke_interval`` up to this many seconds, in every mode; None
        (the default) keeps ``poke_interval``. Use it instead of Airflow's ``exponential_backoff``,
        which the deferrable mode would not follow.
    :param timeout: seconds to wait in all before the sensor fails (default 7 days). The job
        keeps running in Opus: it has no cancel call.
    :param mode: ``poke`` (hold the worker slot) or ``reschedule`` (free it between checks).

    Takes the connection and retry arguments of :class:`~airflow_provider_opus.operators.base.OpusBaseOperator`.
    """

    template_fields = (*OpusBaseOperator.template_fields, "job_execution_id")

    def __init__(
        self,
        *,
        job_execution_id: str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 30,
        timeout: float = DEFAULT_TIMEOUT,
        mode: str = "poke",
        max_poll_interval: float | None = None,
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
        self.deferrable = deferrable

    def poke(self, context: Context) -> bool:
        """Check the status once: False while running, True on ``COMPLETED``, an error otherwise."""
        status = self.hook.get_job_status(self.job_execution_id)
        self.log.info("Opus job %s is %s", self.job_execution_id, status)
        if not self.job_ended(self.job_execution_id, status):
            return False
        self.on_job_completed(context, self.job_execution_id)
        return True

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
        # first poke, across reschedules, so the interval keeps growing after each reschedule.
        if self.max_poll_interval is None:
            return super()._get_next_poke_interval(started_at, run_duration, poke_count)
        waited = run_duration()
        return next_poll(self.poke_interval, self.max_poll_interval, waited, self.timeout - waited).wait

    def deadline_error(self, exc: OpusJobTimeoutError, deadline: str | None) -> BaseException:
        """
        Return the error for a wait that reached its deadline.

        Past the sensor's ``timeout`` it is the same failure as in poke or reschedule mode
        (``AirflowSensorTimeout``, no retries); past ``execution_timeout``, Airflow's task timeout.

        :param exc: the timeout the trigger reported.
        :param deadline: which deadline it was.
        """
        if deadline == "execution_timeout":
            return super().deadline_error(exc, deadline)
        return AirflowSensorTimeout(str(exc))
