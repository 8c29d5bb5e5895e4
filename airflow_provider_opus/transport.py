"""The wire under both hooks: what a failed request means, and the shared ``aiohttp`` sessions.

A request that fails before a response arrives raises a library's own exception; both hooks
turn it into one :class:`~airflow_provider_opus.exceptions.OpusTransportError` by the table
below, which says what happened and whether the server can have seen the request (what the
retry policy needs to know before it sends a billed call again).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from airflow_provider_opus.exceptions import OpusTransportError

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_opus.connection import OpusConnectionSettings

COULD_NOT_CONNECT = ("could not connect", False)
READ_TIMEOUT = ("read timeout", True)

#: What a transport failure means, by exception class name, for requests (and the urllib3 error
#: it wraps) and aiohttp: the reason, and whether the request may have reached the server.
#: Looked up along the exception's class hierarchy, most specific class first, so aiohttp's
#: ConnectionTimeoutError (a ServerTimeoutError) means "could not connect". Names rather than
#: classes: both libraries are imported on first use, and an older aiohttp lacks some classes.
TRANSPORT_FAILURES: dict[str, tuple[str, bool]] = {
    # requests
    "ConnectTimeout": ("connect timeout", False),
    "ReadTimeout": READ_TIMEOUT,
    # urllib3, as the reason of a requests ConnectionError
    "NewConnectionError": COULD_NOT_CONNECT,
    "NameResolutionError": COULD_NOT_CONNECT,
    "ConnectTimeoutError": COULD_NOT_CONNECT,
    # aiohttp
    "ClientConnectorError": COULD_NOT_CONNECT,
    "ConnectionTimeoutError": COULD_NOT_CONNECT,
    "ServerTimeoutError": READ_TIMEOUT,
    "TimeoutError": READ_TIMEOUT,  # asyncio's, for a whole request that ran out of time
}


def transport_error(method: str, path: str, exc: BaseException) -> OpusTransportError:
    """
    Name what happened on the wire, and whether the server can have seen the request.

    Anything the table does not know is a dropped connection after the request was sent:
    the safe assumption for calls that bill.

    :param method: the HTTP method called.
    :param path: the path called (no host, no query string with a signature).
    :param exc: the exception requests or aiohttp raised.
    """
    wrapped = getattr(exc.args[0], "reason", None) if exc.args else None  # urllib3's, inside requests'
    for cause in (exc, wrapped):
        for cls in type(cause).__mro__ if cause is not None else ():
            if cls.__name__ in TRANSPORT_FAILURES:
                reason, request_sent = TRANSPORT_FAILURES[cls.__name__]
                return OpusTransportError(method, path, reason, request_sent=request_sent)
    return OpusTransportError(method, path, f"connection dropped ({type(exc).__name__})", request_sent=True)


class SharedClientSessions:
    """
    The ``aiohttp`` sessions of the async hooks: one per event loop and connection settings, counted.

    A triggerer polling thousands of jobs keeps one pool of keep-alive connections instead of a
    session and a connection per trigger. An ``aiohttp`` session belongs to the loop it was
    opened on, so sessions are kept per loop, weakly, so that a finished loop's sessions go with it.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[OpusConnectionSettings, tuple[aiohttp.ClientSession, int]]
        ] = weakref.WeakKeyDictionary()

    def acquire(self, settings: OpusConnectionSettings) -> aiohttp.ClientSession:
        """
        Return the running loop's session for ``settings``, opened if there is none; count one more user.

        :param settings: the connection settings the session sends with.
        """
        import aiohttp

        sessions = self._by_loop.setdefault(asyncio.get_running_loop(), {})
        session, users = sessions.get(settings, (None, 0))
        if session is None or session.closed:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=settings.connect_timeout, sock_read=settings.timeout
            )
            session, users = aiohttp.ClientSession(headers=settings.api_headers, timeout=timeout), 0
        sessions[settings] = (session, users + 1)
        return session

    async def release(self, settings: OpusConnectionSettings, session: aiohttp.ClientSession) -> None:
        """
        Count one user less of the session :meth:`acquire` gave; close it when none is left.

        :param settings: the settings it was acquired for.
        :param session: the session.
        """
        sessions = self._by_loop.get(asyncio.get_running_loop(), {})
        shared, users = sessions.get(settings, (None, 0))
        if shared is session and users > 1:
            sessions[settings] = (session, users - 1)
            return
        if shared is session:
            del sessions[settings]
        await session.close()


#: The one registry of the process.
shared_client_sessions = SharedClientSessions()
