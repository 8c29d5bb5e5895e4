"""The async hooks' ``aiohttp`` sessions: one per event loop and connection settings.

A triggerer polling thousands of jobs keeps one pool of keep-alive connections instead of a
session and a connection per trigger (measured in docs/benchmarks.md). An ``aiohttp`` session
belongs to the loop it was opened on, so each loop has its own. A session stays open while its
loop runs, so triggers that come later find its connections warm; it is closed when the loop
shuts down (``asyncio.run`` does, as the triggerer runs its loop).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from airflow_provider_opus.transport import aiohttp_ssl

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    import aiohttp

    from airflow_provider_opus.connection import OpusConnectionSettings

_Sessions = dict["OpusConnectionSettings", "aiohttp.ClientSession"]

#: Each running loop's sessions, and the async generator that closes them when the loop shuts down.
#: A session holds its loop, so an entry is dropped by that generator, which lets the loop be freed.
_by_loop: dict[asyncio.AbstractEventLoop, tuple[_Sessions, AsyncGenerator[None, None]]] = {}


def open_session(settings: OpusConnectionSettings) -> aiohttp.ClientSession | None:
    """
    Return the running loop's open session for ``settings``, if it has one; None outside a loop.

    Not a coroutine: a triggerer asks at each of thousands of polls a minute.

    :param settings: the connection settings the session sends with.
    """
    try:
        entry = _by_loop.get(asyncio.get_running_loop())
    except RuntimeError:
        return None
    session = entry[0].get(settings) if entry is not None else None
    return None if session is None or session.closed else session


async def client_session(settings: OpusConnectionSettings) -> aiohttp.ClientSession:
    """
    Return the running loop's session for ``settings``, opened on first use.

    :param settings: the connection settings the session sends with.
    """
    loop = asyncio.get_running_loop()
    entry = _by_loop.get(loop)
    if entry is None:
        sessions: _Sessions = {}
        entry = _by_loop[loop] = (sessions, _close_at_shutdown(loop, sessions))
        # Its first step registers it with the loop, whose shutdown_asyncgens() closes it.
        await entry[1].__anext__()
    session = entry[0].get(settings)
    if session is None or session.closed:
        session = entry[0][settings] = _new_session(settings)
    return session


async def _close_at_shutdown(loop: asyncio.AbstractEventLoop, sessions: _Sessions) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        _by_loop.pop(loop, None)
        await asyncio.gather(*(session.close() for session in sessions.values()), return_exceptions=True)


def _new_session(settings: OpusConnectionSettings) -> aiohttp.ClientSession:
    import aiohttp

    # total: the connection's timeout is the deadline of a whole call, head and body included (a
    # server that drips bytes cannot stretch it); sock_connect finds a dead host fast.
    timeout = aiohttp.ClientTimeout(total=settings.timeout, sock_connect=settings.connect_timeout)
    # No trust_env: the proxy comes from settings.proxy_for at each request, and nothing else (no
    # ~/.netrc credentials) from the environment.
    connector = aiohttp.TCPConnector(ssl=aiohttp_ssl(settings))
    return aiohttp.ClientSession(headers=settings.api_headers, timeout=timeout, connector=connector)
