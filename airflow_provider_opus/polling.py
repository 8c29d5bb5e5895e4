"""
When to check a running Opus job's status again: one rule for the trigger, the blocking wait and the sensor.

:func:`next_poll` is that rule: how long to wait before the next status check, and whether
that check is the final one because the deadline comes first.

By default every wait is ``poll_interval``. With a ``max_poll_interval``, the wait grows with
the time already waited: each wait is :data:`POLL_GROWTH` of it, never shorter than
``poll_interval`` and never longer than ``max_poll_interval``. A job that ends within minutes
is seen as quickly as with the fixed interval; a job waiting a day for a human review costs
about a hundred status calls instead of thousands, and is seen within a tenth of its run time
(or ``max_poll_interval``, whichever is shorter).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

from airflow_provider_opus.exceptions import OpusInvalidArgumentError, show_value

#: With a ``max_poll_interval``, each wait is this fraction of the time waited so far.
POLL_GROWTH = 0.1

#: The longest poll interval or timeout, in seconds: 365 days. Far beyond any real wait, and far
#: within what ``time.sleep``, ``asyncio.sleep`` and a reschedule date (now + interval) can take:
#: ``poll_interval=1e300`` would pass a plain positivity check, then overflow while waiting.
MAX_WAIT_SECONDS = timedelta(days=365).total_seconds()
_MAX_WAIT = f"{MAX_WAIT_SECONDS:.0f} s (365 days)"


def check_poll_intervals(
    poll_interval: float,
    max_poll_interval: float | None,
    interval_name: str = "poll_interval",
    task_id: str | None = None,
) -> None:
    """
    Check the polling arguments of a task or trigger before anything is called.

    :param poll_interval: seconds between status checks (the shortest wait).
    :param max_poll_interval: the longest wait in seconds, or None for a fixed interval.
    :param interval_name: what the caller calls ``poll_interval`` (the sensor says ``poke_interval``).
    :param task_id: the task whose arguments these are, named in the error.
    :raises OpusInvalidArgumentError: naming the argument and what it must be.
    """
    task = f"Task {task_id!r}: " if task_id else ""
    for name, value in ((interval_name, poll_interval), ("max_poll_interval", max_poll_interval)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise OpusInvalidArgumentError(f"{task}{name} must be a number of seconds, got {value!r}")
    if not poll_interval > 0:
        raise OpusInvalidArgumentError(
            f"{task}{interval_name} must be a positive number of seconds, got {poll_interval!r}"
        )
    for name, value in ((interval_name, poll_interval), ("max_poll_interval", max_poll_interval)):
        if value is not None and value > MAX_WAIT_SECONDS:
            raise OpusInvalidArgumentError(f"{task}{name} must be at most {_MAX_WAIT}, got {_shown(value)}")
    if max_poll_interval is not None and not max_poll_interval >= poll_interval:
        raise OpusInvalidArgumentError(
            f"{task}max_poll_interval must be None (a fixed interval) or at least {interval_name} "
            f"({poll_interval} s), got {max_poll_interval!r}"
        )


def check_timeout(timeout: Any, task_id: str | None = None) -> None:
    """
    Check the ``timeout`` of a wait before anything is called: None, or positive and at most :data:`MAX_WAIT_SECONDS`.

    NaN would never time out, and a huge number would overflow when the deadline is computed.

    :param timeout: seconds to wait at most, or None (whatever None means to the caller).
    :param task_id: the task whose argument this is, named in the error.
    :raises OpusInvalidArgumentError: naming the argument and what it must be.
    """
    if timeout is None:
        return
    task = f"Task {task_id!r}: " if task_id else ""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise OpusInvalidArgumentError(f"{task}timeout must be a number of seconds or None, got {timeout!r}")
    if not 0 < timeout <= MAX_WAIT_SECONDS:
        raise OpusInvalidArgumentError(
            f"{task}timeout must be positive and at most {_MAX_WAIT}, or None; got {_shown(timeout)}"
        )


def _shown(seconds: float) -> str:
    # Python refuses to print an int of more than 4,300 digits: that must not hide the clear error.
    return show_value(seconds) if isinstance(seconds, float) or seconds.bit_length() < 10_000 else "a huge int"


def next_poll_wait(poll_interval: float, max_poll_interval: float | None, waited: float) -> float:
    """
    Return the seconds to wait before the next status check, ignoring any deadline.

    :param poll_interval: the shortest wait, and the only one when ``max_poll_interval`` is None.
    :param max_poll_interval: the longest wait, or None for a fixed interval.
    :param waited: seconds since the waiting began.
    """
    if max_poll_interval is None:
        return poll_interval
    return min(max_poll_interval, max(poll_interval, POLL_GROWTH * waited))


class PollStep(NamedTuple):
    """
    The next status check of a wait.

    :param wait: seconds to wait before it.
    :param final: whether it comes at the deadline: a job still running then has run out of time.
    """

    wait: float
    final: bool


def next_poll(
    poll_interval: float, max_poll_interval: float | None, waited: float, remaining: float | None
) -> PollStep:
    """
    Return the wait before the next status check, clamped to the deadline, and whether that check is the final one.

    :param poll_interval: the shortest wait, and the only one when ``max_poll_interval`` is None.
    :param max_poll_interval: the longest wait, or None for a fixed interval.
    :param waited: seconds since the waiting began.
    :param remaining: seconds left until the deadline, or None when there is none.
    """
    wait = next_poll_wait(poll_interval, max_poll_interval, waited)
    if remaining is not None and remaining <= wait:
        return PollStep(max(0.0, remaining), final=True)
    return PollStep(wait, final=False)
