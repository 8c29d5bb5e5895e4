"""
Prototype: one aiohttp session per event loop and connection settings, shared by every trigger.

:class:`OpusJobTrigger` builds an :class:`OpusAsyncHook` per trigger and each hook opens its own
``aiohttp.ClientSession``, so a triggerer with N Opus triggers holds N sessions, N connectors and
N TCP connections. This module keeps one session per (event loop, base URL, service key, timeouts)
instead; the trigger's :meth:`run` is unchanged apart from the hook it builds.

The triggerer-scale benchmark runs the provider's unchanged ``OpusJobTrigger.run`` with this hook
(variant ``trigger_shared_session``, via :func:`install`) against the trigger as it is (``trigger``), and
with :class:`FastPathAsyncHook` as well (variant ``trigger_fast_path``: the shared session plus a first
attempt that skips building the retry machinery).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

import aiohttp
from tenacity import AsyncRetrying

from airflow_provider_opus.api import SERVICE_KEY_HEADER
from airflow_provider_opus.hooks.opus import USER_AGENT, OpusAsyncHook

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_opus.api import Endpoint
    from airflow_provider_opus.hooks.opus import OpusConnectionSettings

_SessionKey = tuple[str, str, float, float]
# Per event loop, so a session is never used from a loop it was not made on; weak, so a closed
# loop's sessions go with it.
_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_SessionKey, aiohttp.ClientSession]] = (
    weakref.WeakKeyDictionary()
)


def shared_session(settings: OpusConnectionSettings) -> aiohttp.ClientSession:
    """The session of this event loop for these connection settings, opened on first use."""
    per_loop = _sessions.setdefault(asyncio.get_running_loop(), {})
    key = (settings.base_url, settings.service_key, settings.connect_timeout, settings.timeout)
    session = per_loop.get(key)
    if session is None or session.closed:
        # The same headers and timeouts as OpusAsyncHook._get_session.
        headers = {SERVICE_KEY_HEADER: settings.service_key, "Accept": "application/json", "User-Agent": USER_AGENT}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout, sock_read=settings.timeout)
        session = aiohttp.ClientSession(headers=headers, timeout=timeout)
        per_loop[key] = session
    return session


async def close_shared_sessions() -> None:
    """Close this loop's shared sessions (a triggerer would do it at shutdown)."""
    for session in _sessions.pop(asyncio.get_running_loop(), {}).values():
        await session.close()


class SharedSessionAsyncHook(OpusAsyncHook):
    """An :class:`OpusAsyncHook` whose session is shared; :meth:`close` leaves it open for the others."""

    async def _get_session(self) -> aiohttp.ClientSession:
        return shared_session(await self.get_settings())

    async def close(self) -> None:
        return None


def install() -> None:
    """Make :class:`OpusJobTrigger` build :class:`SharedSessionAsyncHook` in this process (benchmark only)."""
    import airflow_provider_opus.triggers.opus as trigger_module

    trigger_module.OpusAsyncHook = SharedSessionAsyncHook  # type: ignore[misc]


class FastPathAsyncHook(SharedSessionAsyncHook):
    """
    :class:`SharedSessionAsyncHook` whose first attempt runs outside tenacity.

    The retry machinery (``AsyncRetrying``, its state and closures) is built only when the first attempt
    fails. The failed attempt is then replayed as tenacity's first attempt without another request, so
    attempt numbers, waits, log lines and the stop rule are exactly the provider's.
    """

    async def _call(self, endpoint: Endpoint, path_params: Mapping[str, str]) -> Any:
        path = endpoint.path(**path_params)
        try:
            return await self._send_once(endpoint, path)
        except Exception as exc:
            first_error: Exception | None = exc
        kwargs = self.retry_policy.tenacity_kwargs(endpoint, f"{endpoint.method} {path}")
        async for attempt in AsyncRetrying(**kwargs):
            with attempt:
                if first_error is not None:
                    error, first_error = first_error, None
                    raise error
                return await self._send_once(endpoint, path)
        raise AssertionError("unreachable: tenacity reraises the last error")


def install_fast_path() -> None:
    """Make :class:`OpusJobTrigger` build :class:`FastPathAsyncHook` in this process (benchmark only)."""
    import airflow_provider_opus.triggers.opus as trigger_module

    trigger_module.OpusAsyncHook = FastPathAsyncHook  # type: ignore[misc]
