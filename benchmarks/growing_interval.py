"""
Prototype: an OpusJobTrigger whose poll interval grows from ``poll_interval`` up to ``max_poll_interval``.

Opus jobs can wait days for a human review step; polling those every 30 s costs 2,880 status calls
a day each. Two ways to grow the wait, both bounded by ``max_poll_interval``:

* geometric (``poll_backoff``): each wait is ``poll_backoff`` times the previous one;
* proportional (``poll_fraction``): each wait is ``poll_fraction`` of the time waited so far, so the
  detection delay stays within that fraction of the job's run time.

Short jobs are seen as quickly as with the fixed interval; with ``max_poll_interval=None`` it is the
provider's fixed interval. Used by ``benchmarks/poll_economy.py``; not part of the provider.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_opus.api import JobStatus
from airflow_provider_opus.exceptions import OpusError
from airflow_provider_opus.triggers.opus import OpusJobTrigger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def next_wait(
    poll_interval: float,
    max_poll_interval: float | None,
    poll_backoff: float | None,
    poll_fraction: float | None,
    previous: float | None,
    elapsed: float,
) -> float:
    """
    Seconds to wait before the next poll.

    :param previous: the previous wait, None before the first.
    :param elapsed: seconds since the first poll.
    """
    if max_poll_interval is None:
        return poll_interval
    if poll_fraction is not None:
        return max(poll_interval, min(max_poll_interval, poll_fraction * elapsed))
    if previous is None or poll_backoff is None:
        return poll_interval
    return min(max_poll_interval, previous * poll_backoff)


class GrowingIntervalOpusJobTrigger(OpusJobTrigger):
    """
    :class:`OpusJobTrigger` with a growing poll interval.

    :param max_poll_interval: upper bound of the interval in seconds; None keeps it fixed.
    :param poll_backoff: geometric growth: factor between consecutive waits.
    :param poll_fraction: proportional growth: each wait is this fraction of the time waited so far
        (takes precedence over ``poll_backoff``).
    """

    def __init__(
        self,
        *args: Any,
        max_poll_interval: float | None = None,
        poll_backoff: float | None = None,
        poll_fraction: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_poll_interval = max_poll_interval
        self.poll_backoff = poll_backoff
        self.poll_fraction = poll_fraction

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **kwargs,
                "max_poll_interval": self.max_poll_interval,
                "poll_backoff": self.poll_backoff,
                "poll_fraction": self.poll_fraction,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The provider's loop (triggers/opus.py: wait first, then poll) with only the wait changed.
        from airflow_provider_opus.triggers import opus as trigger_module

        job = self.job_execution_id
        started = time.monotonic()
        wait: float | None = None
        last_status: str | None = None
        hook = trigger_module.OpusAsyncHook(
            self.opus_conn_id, retry_limit=self.retry_limit, retry_delay=self.retry_delay
        )
        try:
            while True:
                wait = next_wait(
                    self.poll_interval,
                    self.max_poll_interval,
                    self.poll_backoff,
                    self.poll_fraction,
                    wait,
                    time.monotonic() - started,
                )
                sleep, final_poll = wait, False
                if self.end_time is not None:
                    remaining = self.end_time - time.time()
                    sleep, final_poll = max(0.0, min(wait, remaining)), remaining <= wait
                await asyncio.sleep(sleep)
                status = await hook.get_job_status(job)
                last_status = status
                if JobStatus.is_success(status):
                    yield self._event("success", status, f"Opus job {job} COMPLETED")
                    return
                if JobStatus.is_terminal(status):
                    yield self._event("failed", status, f"Opus job {job} ended with status {status!r}")
                    return
                if final_poll:
                    yield self._event("timeout", status, f"Opus job {job} still {status} at the deadline")
                    return
        except Exception as exc:
            yield self._event("error", last_status, str(exc) if isinstance(exc, OpusError) else repr(exc))
        finally:
            await hook.close()
