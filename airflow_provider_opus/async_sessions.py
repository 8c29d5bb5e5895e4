"""The ``aiohttp`` sessions of the async hooks: shared per event loop and connection settings.

A triggerer polling thousands of jobs keeps one pool of keep-alive connections instead of a
session and a connection per trigger; see :class:`SharedClientSessions`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import weakref
from typing import TYPE_CHECKING

from airflow_provider_opus.transport import aiohttp_ssl

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    import aiohttp

    from airflow_provider_opus.connection import OpusConnectionSettings


class _LoopSessions:
    """The sessions of one event loop, and the async generator whose closing closes them."""

    def __init__(self) -> None:
        self.sessions: dict[OpusConnectionSettings, tuple[aiohttp.ClientSession, weakref.WeakSet[object]]] = {}
        self.closer: AsyncGenerator[None, None] | None = None


class SharedClientSessions:
    """
    The ``aiohttp`` sessions of the async hooks: one per event loop and connection settings.

    A triggerer polling thousands of jobs keeps one pool of keep-alive connections instead of a
    session and a connection per trigger. An ``aiohttp`` session belongs to the loop it was opened
    on: a hook asks for the running loop's session at each call, so a hook used again under a new
    loop (a second ``asyncio.run``) gets that loop's session, never a closed loop's.

    A session is closed when the last hook holding it lets go (:meth:`release`), and at the latest
    when its loop shuts down: ``asyncio.run`` (and ``loop.shutdown_asyncgens()``) closes the async
    generators started on the loop, and one of them, started with the loop's first session, closes
    the loop's sessions and forgets the loop. A session holds its loop, so the registry must drop
    a loop itself for the loop to be freed; a loop closed without that shutdown is dropped when
    the next loop opens a session, and a loop still open at interpreter exit gets its sessions
    closed then.
    """

    def __init__(self) -> None:
        self._by_loop: dict[asyncio.AbstractEventLoop, _LoopSessions] = {}
        self._exit_hook_registered = False

    async def acquire(self, settings: OpusConnectionSettings, holder: object) -> aiohttp.ClientSession:
        """
        Return the running loop's session for ``settings``, opened if there is none; ``holder`` now holds it.

        :param settings: the connection settings the session sends with.
        :param holder: who holds it (a hook), kept weakly: a holder that is never released only
            keeps the session until its loop shuts down.
        """
        loop = asyncio.get_running_loop()
        loop_sessions = self._by_loop.get(loop)
        if loop_sessions is None:
            loop_sessions = await self._open_loop(loop)
        session, holders = loop_sessions.sessions.get(settings, (None, None))
        if session is None or holders is None or session.closed:
            session, holders = _new_session(settings), weakref.WeakSet()
            loop_sessions.sessions[settings] = (session, holders)
        holders.add(holder)
        return session

    def held_by(self, settings: OpusConnectionSettings, holder: object) -> aiohttp.ClientSession | None:
        """
        Return the running loop's session for ``settings`` if ``holder`` holds it.

        :param settings: the connection settings.
        :param holder: the holder.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        loop_sessions = self._by_loop.get(loop)
        session, holders = loop_sessions.sessions.get(settings, (None, None)) if loop_sessions else (None, None)
        return session if holders is not None and holder in holders else None

    async def release(self, settings: OpusConnectionSettings, holder: object) -> None:
        """
        Let go of the running loop's session for ``settings``; close it when no holder is left.

        :param settings: the settings it was acquired for.
        :param holder: the holder that acquired it.
        """
        loop_sessions = self._by_loop.get(asyncio.get_running_loop())
        session, holders = loop_sessions.sessions.get(settings, (None, None)) if loop_sessions else (None, None)
        if loop_sessions is None or session is None or holders is None or holder not in holders:
            return
        holders.discard(holder)
        if not holders:
            del loop_sessions.sessions[settings]
            await session.close()

    async def _open_loop(self, loop: asyncio.AbstractEventLoop) -> _LoopSessions:
        self._drop_closed_loops()
        loop_sessions = self._by_loop[loop] = _LoopSessions()
        loop_sessions.closer = self._close_at_shutdown(loop)
        # The first step registers the generator with the running loop, which closes it at shutdown.
        await loop_sessions.closer.__anext__()
        if not self._exit_hook_registered:
            atexit.register(self._close_at_exit)
            self._exit_hook_registered = True
        return loop_sessions

    async def _close_at_shutdown(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            loop_sessions = self._by_loop.pop(loop, None)
            if loop_sessions is not None and not loop.is_closed():
                sessions = [session for session, _ in loop_sessions.sessions.values()]
                loop_sessions.sessions.clear()
                await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)

    def _drop_closed_loops(self) -> None:
        # A loop closed without shutting down its async generators: its sessions cannot be closed
        # any more; forget them so that the loop can be freed.
        for loop, loop_sessions in list(self._by_loop.items()):  # a copy: other threads run other loops
            if loop.is_closed():
                self._by_loop.pop(loop, None)
                _finish(loop_sessions.closer)

    def _close_at_exit(self) -> None:
        for loop, loop_sessions in list(self._by_loop.items()):
            if loop.is_running():
                continue  # another thread's loop, still running: it closes its sessions when it shuts down
            if loop.is_closed() or loop_sessions.closer is None:
                _finish(loop_sessions.closer)
            else:
                loop.run_until_complete(loop_sessions.closer.aclose())


def _finish(closer: AsyncGenerator[None, None] | None) -> None:
    # For a closed loop only. Close the generator here and now: its finally block awaits nothing then, and a
    # generator left to the garbage collector would ask the closed loop to close it. StopIteration
    # says it is closed; RuntimeError that it is closing already.
    if closer is not None:
        with contextlib.suppress(StopIteration, RuntimeError):
            closer.aclose().send(None)


def _new_session(settings: OpusConnectionSettings) -> aiohttp.ClientSession:
    import aiohttp

    # total: the connection's timeout is the deadline of a whole call, body included (a server
    # that drips bytes cannot stretch it); sock_connect finds a dead host fast.
    timeout = aiohttp.ClientTimeout(total=settings.timeout, sock_connect=settings.connect_timeout)
    # No trust_env: the proxy comes from settings.proxy_for at each request, and nothing else (no
    # ~/.netrc credentials) from the environment.
    connector = aiohttp.TCPConnector(ssl=aiohttp_ssl(settings))
    return aiohttp.ClientSession(headers=settings.api_headers, timeout=timeout, connector=connector)


#: The one registry of the process.
shared_client_sessions = SharedClientSessions()
