"""Deferrable waiting for an Opus job: native async polling in the triggerer."""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_opus.exceptions import OpusError, OpusInvalidArgumentError, describe_value, error_event_fields
from airflow_provider_opus.hooks.opus import OpusAsyncHook
from airflow_provider_opus.polling import check_poll_intervals, next_poll
from airflow_provider_opus.retry import check_retry_settings
from airflow_provider_opus.status import JobOutcome, StatusRules

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class OpusJobTrigger(BaseTrigger):
    """
    Poll an Opus job's status until the job ends (by :mod:`airflow_provider_opus.status`) or the deadline passes.

    Fires exactly one event: ``{"status": "success" | "failed" | "timeout" | "error",
    "job_execution_id", "opus_status", "message"}``. Transient HTTP errors are retried by
    the hook's policy; anything left over ends in an ``error`` event, never in success. An
    ``error`` event also carries ``error_type`` (and, for an HTTP error, ``method``, ``path``,
    ``reason``, ``http_status``, ``server_message``), so the task raises the same error.

    :param job_execution_id: the job to watch.
    :param opus_conn_id: the Airflow connection of type ``opus``.
    :param poll_interval: seconds between status checks.
    :param end_time: absolute deadline as a Unix timestamp, or None to wait as long as the job
        runs. Checked before each poll; the last poll happens at the deadline itself.
    :param retry_limit: retries of a failed status call.
    :param retry_delay: base delay between those retries in seconds.
    :param max_poll_interval: let the wait between checks grow with the time waited, up to this
        many seconds (see :mod:`airflow_provider_opus.polling`); None keeps ``poll_interval``.
    :param waiting_since: Unix time the waiting began; defaults to now. Serialised, so a
        restarted triggerer goes on with the grown interval.
    :param running_statuses: more statuses that mean the job still runs (see
        :class:`~airflow_provider_opus.status.StatusRules`).
    :param failed_statuses: more statuses that mean the job ended without success.

    The first poll comes one ``poll_interval`` after the trigger starts: the task checked the
    status just before it deferred. (This also keeps clear of apache/airflow#67287, where a
    trigger firing within moments of the deferral fails the task on Airflow 3.3.2.)
    """

    def __init__(
        self,
        job_execution_id: str,
        opus_conn_id: str = "opus_default",
        poll_interval: float = 30.0,
        end_time: float | None = None,
        retry_limit: int = 3,
        retry_delay: float = 1.0,
        max_poll_interval: float | None = None,
        waiting_since: float | None = None,
        running_statuses: list[str] | None = None,
        failed_statuses: list[str] | None = None,
    ) -> None:
        super().__init__()
        check_poll_intervals(poll_interval, max_poll_interval)
        check_retry_settings(retry_limit, retry_delay)  # refused here, where the task deferred, not in the triggerer
        number = isinstance(end_time, (int, float)) and not isinstance(end_time, bool)
        if end_time is not None and not (number and math.isfinite(end_time)):  # nan: a deadline never reached
            raise OpusInvalidArgumentError(
                f"end_time must be a Unix time in seconds or None, got {describe_value(end_time)}"
            )
        self.job_execution_id = job_execution_id
        self.opus_conn_id = opus_conn_id
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.retry_limit = retry_limit
        self.retry_delay = retry_delay
        self.max_poll_interval = max_poll_interval
        self.waiting_since = time.time() if waiting_since is None else waiting_since
        self.status_rules = StatusRules(running_statuses, failed_statuses)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return every constructor argument, so a restarted triggerer rebuilds the same trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_execution_id": self.job_execution_id,
                "opus_conn_id": self.opus_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "retry_limit": self.retry_limit,
                "retry_delay": self.retry_delay,
                "max_poll_interval": self.max_poll_interval,
                "waiting_since": self.waiting_since,
                "running_statuses": self.status_rules.added_running,
                "failed_statuses": self.status_rules.added_failed,
            },
        )

    async def on_kill(self) -> None:
        """Say in the triggerer's log that the job keeps running: Opus has no cancel call (Airflow 3.3+ calls this)."""
        self.log.warning(
            "The deferred task was marked or cleared by a user. Opus has no cancel call: job %s keeps running in Opus.",
            self.job_execution_id,
        )

    def _event(self, status: str, opus_status: str | None, message: str, **error: Any) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "job_execution_id": self.job_execution_id,
                "opus_status": opus_status,
                "message": message,
                **error,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job ends or the deadline passes, then yield one event."""
        job = self.job_execution_id
        last_status: str | None = None
        warned: set[str] = set()
        hook = OpusAsyncHook(self.opus_conn_id, retry_limit=self.retry_limit, retry_delay=self.retry_delay)
        try:
            # Read the connection now: a broken one is reported at once, not one poll_interval later.
            await hook.get_settings()
            while True:
                # The task checked the status just before it deferred: wait first, then poll.
                now = time.time()
                remaining = None if self.end_time is None else self.end_time - now
                step = next_poll(self.poll_interval, self.max_poll_interval, now - self.waiting_since, remaining)
                await asyncio.sleep(step.wait)
                status = await hook.get_job_status(job)
                elapsed = time.time() - self.waiting_since
                if status != last_status:
                    self.log.info("Opus job %s is %s (after %.0f s)", job, status, elapsed)
                    last_status = status
                outcome = self.status_rules.poll_outcome(job, status, warned, self.log)
                if outcome is JobOutcome.SUCCEEDED:
                    yield self._event("success", status, f"Opus job {job} COMPLETED after {elapsed:.0f} s")
                    return
                if outcome is JobOutcome.FAILED:
                    yield self._event("failed", status, f"Opus job {job} ended with status {status!r}")
                    return
                if step.final:
                    yield self._event(
                        "timeout",
                        status,
                        f"Opus job {job} still {status} at the deadline. Opus has no cancel call: "
                        f"job {job} keeps running.",
                    )
                    return
        except Exception as exc:
            # Fail closed with the reason: an event the task can explain beats a crashed trigger. The
            # error's kind goes with it, so the task fails as a wait in a worker would (a refused key: final).
            message = str(exc) if isinstance(exc, OpusError) else repr(exc)
            yield self._event("error", last_status, message, **error_event_fields(exc))
        finally:
            await hook.close()
