"""The one retry policy of the provider, used by the sync and the async hook alike.

What is retried:

* idempotent calls (GETs, the upload-URL request, the presigned PUT): connection
  errors, timeouts, dropped connections, 429 and 5xx; an upload (a fresh presigned URL, then
  the PUT, retried as one) also when storage refuses the URL (401/403: it expired);
* calls that create or start billed work (``/job/initiate``, ``/job/execute``): only
  where the request provably never reached Opus: connection refused or connect timeout, a
  proxy that could not be reached or refused the tunnel, and 429. Never after a read timeout,
  a dropped response or any 5xx (a gateway may answer 502, 503 or 504 after forwarding the
  call to Opus, which acted), so a retry never bills a second job: :func:`may_have_acted`
  says which failures leave that open, and the hooks say so in the error;
* nothing when the server's certificate was not trusted: no retry in place changes it.

Waits grow exponentially with jitter; a ``Retry-After`` header is honoured as given.
A ``Retry-After`` longer than ``max_retry_after`` is not slept through in the task:
the error is raised so that Airflow's own task retry (which frees the worker) takes over.

The first attempt runs outside tenacity: almost every call succeeds at once, and a
triggerer polling thousands of jobs should not build the retry machinery for each poll.
The machinery is built when that attempt fails, and the failure is handed to it as its
own first attempt, so attempt numbers, waits and log lines do not change.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

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
    if isinstance(exc, OpusTLSError):
        return False
    if isinstance(exc, OpusTransportError):
        return idempotent or not exc.request_sent
    if isinstance(exc, OpusRateLimitError):
        return True
    if isinstance(exc, OpusServerError):
        # Any 5xx may come from a gateway that forwarded the call to Opus, which acted.
        return idempotent
    if isinstance(exc, OpusStorageError):
        # A refused presigned URL has most likely expired: the upload retries with a fresh one.
        return exc.http_status in (401, 403)
    return False


def may_have_acted(exc: BaseException) -> bool:
    """
    Tell whether a billed call that raised ``exc`` may still have been acted on (a job created or started).

    True unless the request provably never reached Opus or Opus answered with a refusal: a 5xx
    (perhaps a gateway's, after forwarding), a dropped or late answer, or a 2xx that cannot be read.

    :param exc: the error the call raised.
    """
    if isinstance(exc, OpusTransportError):
        return exc.request_sent
    return isinstance(exc, (OpusServerError, OpusResponseError))


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
        limit, delay = self.retry_limit, self.retry_delay
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise OpusInvalidArgumentError(
                f"retry_limit must be a whole number, 0 or more, got {describe_value(limit)}"
            )
        number = isinstance(delay, (int, float)) and not isinstance(delay, bool)
        if not number or not math.isfinite(delay) or delay < 0:  # nan would make every wait nan
            raise OpusInvalidArgumentError(
                f"retry_delay must be a number of seconds, 0 or more, got {describe_value(delay)}"
            )

    def should_retry(self, exc: BaseException, endpoint: Endpoint) -> bool:
        """
        Tell whether to retry ``exc`` (attempt counting is tenacity's).

        :param exc: the error the call raised.
        :param endpoint: the endpoint called.
        """
        if not is_retryable(exc, endpoint):
            return False
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is None or retry_after <= self.max_retry_after

    def wait_seconds(self, attempt_number: int, exc: BaseException | None) -> float:
        """
        Return the seconds to wait before the next attempt.

        :param attempt_number: the attempt that just failed, from 1.
        :param exc: the error it raised.
        """
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        backoff = min(self.max_delay, self.retry_delay * 2 ** (attempt_number - 1))
        return backoff + random.uniform(0, self.retry_delay)

    def call(self, endpoint: Endpoint, description: str, attempt: Callable[[], T]) -> T:
        """
        Run ``attempt`` and retry it by this policy.

        :param endpoint: the endpoint called (decides what is safe to retry).
        :param description: what is called, for the retry log lines (method and path).
        :param attempt: one attempt at the call.
        """
        try:
            return attempt()
        except Exception as exc:
            first_failure: Exception | None = exc
        for retrying in Retrying(**self.tenacity_kwargs(endpoint, description)):
            with retrying:
                if first_failure is not None:
                    failure, first_failure = first_failure, None
                    raise failure
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
            first_failure: Exception | None = exc
        async for retrying in AsyncRetrying(**self.tenacity_kwargs(endpoint, description)):
            with retrying:
                if first_failure is not None:
                    failure, first_failure = first_failure, None
                    raise failure
                return await attempt()
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def tenacity_kwargs(self, endpoint: Endpoint, description: str) -> dict[str, Any]:
        """
        Return the arguments for ``tenacity.Retrying`` or ``tenacity.AsyncRetrying``.

        :param endpoint: the endpoint called.
        :param description: what is called, for the log line before each retry (method and path).
        """

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(state.attempt_number, exc)

        def before_sleep(state: RetryCallState) -> None:
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
            "retry": retry_if_exception(lambda exc: self.should_retry(exc, endpoint)),
            "stop": stop_after_attempt(self.retry_limit + 1),
            "wait": wait,
            "before_sleep": before_sleep,
            "reraise": True,
        }
