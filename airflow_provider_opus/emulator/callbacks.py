"""
Job callbacks: when a job with a ``callbackUrl`` ends, POST its result there, as the current API does.

The body Opus posts is not documented; the emulator posts ``{"jobExecutionId", "status",
"jobResultsPayloadSchema"}`` (the results only for a COMPLETED job). It posts only to loopback hosts
(``localhost``, ``127.0.0.0/8``, ``::1``): a test or a DAG pointed at the emulator must never make it
call another machine, so any other host is recorded as skipped. Delivery is best effort: a few attempts
with a short backoff, each recorded (``OpusEmulator.callback_deliveries()``) and logged, in the
background, so no request waits for it.

Job ends are not events (a job's status follows from its timestamps), so :func:`run_callbacks` looks
for ended jobs a few times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.emulator.generations import is_loopback_url

if TYPE_CHECKING:
    from airflow_provider_opus.emulator.state import EmulatorState

log = logging.getLogger(__name__)

#: Attempts per callback, and the pause before the second (doubling after each further failure).
CALLBACK_ATTEMPTS = 3
CALLBACK_BACKOFF_SECONDS = 0.2
#: Seconds one attempt may take.
CALLBACK_TIMEOUT_SECONDS = 2.0
#: How often ended jobs are looked for.
CALLBACK_POLL_SECONDS = 0.05


async def run_callbacks(state: EmulatorState, stop: asyncio.Event) -> None:
    """
    Send the callbacks of jobs as they end, until ``stop`` is set; deliveries under way are then cancelled.

    :param state: the emulator state whose jobs to watch.
    :param stop: set when the emulator stops.
    """
    deliveries: set[asyncio.Task[bool]] = set()
    try:
        while not stop.is_set():
            for job_id, url, body in state.due_callbacks():
                task = asyncio.create_task(deliver(state, job_id, url, body))
                deliveries.add(task)
                task.add_done_callback(deliveries.discard)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), CALLBACK_POLL_SECONDS)
    finally:
        for task in list(deliveries):
            task.cancel()
        await asyncio.gather(*deliveries, return_exceptions=True)


async def deliver(state: EmulatorState, job_id: str, url: str, body: dict[str, Any]) -> bool:
    """
    POST one job's callback, retrying a failed attempt after a short pause; record every attempt.

    :param state: where attempts are recorded.
    :param job_id: the job's jobExecutionId.
    :param url: the job's callbackUrl.
    :param body: the JSON body to post.
    :return: whether an attempt got a 2xx answer.
    """
    if not is_loopback_url(url):
        log.warning(
            "Opus emulator: not sending the callback of job %s to %s: only loopback hosts get callbacks", job_id, url
        )
        state.record_callback_delivery(job_id, url, 0, "skipped: not a loopback host", None)
        return False
    data = json.dumps(body).encode()
    pause = CALLBACK_BACKOFF_SECONDS
    for attempt in range(1, CALLBACK_ATTEMPTS + 1):
        # In a thread: the POST may go to this very emulator, whose event loop must stay free to answer it.
        status, error = await asyncio.to_thread(_post, url, data)
        delivered = status is not None and 200 <= status < 300
        outcome = "delivered" if delivered else f"failed: {error or f'HTTP {status}'}"
        log.info("Opus emulator: callback of job %s to %s, attempt %d: %s", job_id, url, attempt, outcome)
        state.record_callback_delivery(job_id, url, attempt, outcome, status)
        if delivered:
            return True
        if attempt < CALLBACK_ATTEMPTS:
            await asyncio.sleep(pause)
            pause *= 2
    return False


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: following one could take the callback off loopback."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Follow no redirect; the 3xx answer is the attempt's outcome."""
        return None


def _post(url: str, data: bytes) -> tuple[int | None, str | None]:
    """POST JSON to a loopback URL; return ``(status, None)`` for an answer or ``(None, error)``."""
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    # No proxy: the environment's would carry a loopback call elsewhere. No certificate check: the URL is
    # loopback (checked before), and the emulator's own TLS certificate is usually from a private test CA.
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({}),
        _NoRedirects(),
        urllib.request.HTTPSHandler(context=ssl._create_unverified_context()),
    ]
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=CALLBACK_TIMEOUT_SECONDS) as response:
            return int(response.status), None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
