"""The one retry policy of the provider, used by the sync and the async hook alike (long form: docs/retries.md).

Idempotent calls are retried after a transport error, 429 or 5xx, an upload also when storage refuses its URL
(401/403: expired); billed calls (``/job/initiate``, ``/job/execute``) only when the request provably never
reached Opus, or after a 429; no call after an untrusted certificate. Waits grow exponentially with jitter; a
``Retry-After`` over ``max_retry_after`` is raised, for Airflow's task retry to take over.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import tenacity

from airflow_provider_opus.api import Endpoint, RetrySafety
from airflow_provider_opus.exceptions import (
    OpusInvalidArgumentError,
    OpusRateLimitError,
    OpusRequestError,
    OpusResponseError,
    OpusServerError,
    OpusStorageError,
    OpusTLSError,
    OpusTransportError,
    describe_value,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_retryable(exc: BaseException, endpoint: Endpoint) -> bool:
    """
    Tell whether ``exc`` raised by a call to ``endpoint`` may be retried at all.

    :param exc: the error the call raised.
    :param endpoint: the endpoint called.
    """
    idempotent = endpoint.retry_safety is RetrySafety.IDEMPOTENT
    if isinstance(exc, OpusTransportError):  # no retry in place makes a certificate trusted
        return not isinstance(exc, OpusTLSError) and (idempotent or not exc.request_sent)
    if isinstance(exc, OpusServerError):  # perhaps a gateway's, after it forwarded the call to Opus
        return idempotent
    if isinstance(exc, OpusStorageError):  # a refused presigned URL has most likely expired
        return exc.http_status in (401, 403)
    return isinstance(exc, OpusRateLimitError)


def may_have_acted(exc: BaseException) -> bool:
    """
    Tell whether a billed call that raised ``exc`` may still have created or started a job.

    :param exc: the error the call raised.
    """
    if isinstance(exc, OpusTransportError):
        return exc.request_sent
    return isinstance(exc, (OpusServerError, OpusResponseError))


def check_retry_settings(retry_limit: Any, retry_delay: Any) -> None:
    """
    Refuse a retry limit or delay that is not a number of the right kind.

    :param retry_limit: retries after the first attempt: a whole number, 0 or more.
    :param retry_delay: seconds before the first retry: a finite number, 0 or more.
    :raises OpusInvalidArgumentError: naming the argument and what it got.
    """
    limit, delay = retry_limit, retry_delay
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise OpusInvalidArgumentError(f"retry_limit must be a whole number, 0 or more, got {describe_value(limit)}")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay < math.inf:  # nan too
        raise OpusInvalidArgumentError(
            f"retry_delay must be a number of seconds, 0 or more, got {describe_value(delay)}"
        )


@dataclass(frozen=True)
class RetryPolicy:
    """
    How often and how long to retry a failed call. Plain numbers, so it serialises into a trigger.

    :param retry_limit: retries after the first attempt (0 disables retrying).
    :param retry_delay: base delay in seconds; the n-th retry waits about
        ``retry_delay * 2 ** (n - 1)`` plus up to ``retry_delay`` of jitter.
    :param max_delay: upper bound of a backoff wait in seconds.
    :param max_retry_after: the longest ``Retry-After`` in seconds that is waited out in place.
    """

    retry_limit: int = 3
    retry_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        check_retry_settings(self.retry_limit, self.retry_delay)

    def call(self, endpoint: Endpoint, description: str, attempt: Callable[[], T]) -> T:
        """
        Run ``attempt`` and retry it by this policy.

        :param endpoint: the endpoint called (decides what is safe to retry).
        :param description: what is called, for the retry log lines (method and path).
        :param attempt: one attempt at the call.
        """
        # The first attempt runs outside tenacity: almost every call succeeds at once, and a triggerer polling
        # thousands of jobs should not build the machinery for each poll. Its failure is tenacity's first attempt.
        try:
            return attempt()
        except Exception as exc:
            pending = [exc]
        for retrying in tenacity.Retrying(**self.tenacity_kwargs(endpoint, description)):
            with retrying:
                if pending:
                    raise pending.pop()
                return attempt()
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def acall(self, endpoint: Endpoint, description: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """
        Await ``attempt`` and retry it by this policy; the async twin of :meth:`call`.

        :param endpoint: the endpoint called (decides what is safe to retry).
        :param description: what is called, for the retry log lines (method and path).
        :param attempt: makes one attempt at the call.
        """
        try:
            return await attempt()
        except Exception as exc:
            pending = [exc]
        async for retrying in tenacity.AsyncRetrying(**self.tenacity_kwargs(endpoint, description)):
            with retrying:
                if pending:
                    raise pending.pop()
                return await attempt()
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def tenacity_kwargs(self, endpoint: Endpoint, description: str) -> dict[str, Any]:
        """
        Return the arguments for ``tenacity.Retrying`` or ``tenacity.AsyncRetrying``.

        :param endpoint: the endpoint called.
        :param description: what is called, for the log line before each retry (method and path).
        """
        backoff = tenacity.wait_exponential(multiplier=self.retry_delay, max=self.max_delay)
        jitter = tenacity.wait_random(0, self.retry_delay)

        def should_retry(exc: BaseException) -> bool:
            retry_after = getattr(exc, "retry_after", None)
            return is_retryable(exc, endpoint) and (retry_after is None or retry_after <= self.max_retry_after)

        def wait(state: tenacity.RetryCallState) -> float:
            retry_after = getattr(state.outcome and state.outcome.exception(), "retry_after", None)
            return backoff(state) + jitter(state) if retry_after is None else float(retry_after)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            reason = exc.reason if isinstance(exc, OpusRequestError) else type(exc).__name__
            status = f"HTTP {exc.http_status}, " if isinstance(exc, OpusRequestError) and exc.http_status else ""
            log.warning(
                "Opus %s failed (%s%s); retry %d of %d in %.1f s",
                description,
                status,
                reason,
                state.attempt_number,
                self.retry_limit,
                state.upcoming_sleep,
            )

        return {
            "retry": tenacity.retry_if_exception(should_retry),
            "stop": tenacity.stop_after_attempt(self.retry_limit + 1),
            "wait": wait,
            "before_sleep": before_sleep,
            "reraise": True,
        }
