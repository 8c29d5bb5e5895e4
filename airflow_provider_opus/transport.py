"""The wire under both hooks: what a failed request means, how long and large an answer may be, proxy and TLS.

A request that fails before a response arrives raises a library's own exception; both hooks
turn it into one :class:`~airflow_provider_opus.exceptions.OpusTransportError` by the table
below, which says what happened and whether the server can have seen the request (what the
retry policy needs to know before it sends a billed call again).

Both hooks bound each call the same way: the connection's ``timeout`` is a deadline for the
whole exchange (connect, send, headers and body), not for each socket read, so a server that
drips bytes cannot hold a task or a trigger for longer; and a response body is read chunk by
chunk up to :data:`MAX_RESPONSE_BYTES`, so an oversized answer cannot fill the memory.

Both hooks take their proxy and CAs from the one rule of the connection settings
(:meth:`~airflow_provider_opus.connection.OpusConnectionSettings.proxy_for` and
:attr:`~airflow_provider_opus.connection.OpusConnectionSettings.tls_verify`), put in each
library's terms here: :func:`requests_network` and :func:`aiohttp_ssl`. The async hooks'
shared sessions are in :mod:`airflow_provider_opus.async_sessions`.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.connection import verifying_context
from airflow_provider_opus.exceptions import OpusResponseError, OpusTransportError

if TYPE_CHECKING:
    import ssl

    import requests

    from airflow_provider_opus.connection import OpusConnectionSettings

#: The largest response body read, in bytes. Opus answers with small JSON (a results object with
#: file URLs, an audit trail); a larger body is not an answer to use, and reading it would only
#: fill the memory of a worker or the triggerer.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Bytes read at a time, so that memory stays within the limit above while a body arrives.
READ_CHUNK_BYTES = 64 * 1024

COULD_NOT_CONNECT = ("could not connect", False)
READ_TIMEOUT = ("read timeout", True)
#: Stands for the reason :func:`deadline_error` words, with the deadline in it.
DEADLINE_PASSED = ("deadline", True)
#: The proxy was unreachable or refused the tunnel (a 407 or 502 to CONNECT): nothing reached Opus.
PROXY_FAILED = (
    "could not connect through the proxy: check the connection's proxy_url, or HTTPS_PROXY, HTTP_PROXY and "
    "NO_PROXY in the environment of the worker or triggerer",
    False,
)
#: The server's certificate was not trusted: the handshake ended before the request was sent.
TLS_NOT_VERIFIED = (
    "TLS verification failed: the server's certificate is not signed by a trusted CA or does not name the host; "
    "set the connection's ca_bundle to your CA's PEM file",
    False,
)

#: What a transport failure means, by exception class name, for requests (and the urllib3 error
#: it wraps) and aiohttp: the reason, and whether the request may have reached the server.
#: Looked up along the exception's class hierarchy, most specific class first, so aiohttp's
#: ConnectionTimeoutError (a ServerTimeoutError) means "could not connect". Names rather than
#: classes: both libraries are imported on first use, and an older aiohttp lacks some classes.
TRANSPORT_FAILURES: dict[str, tuple[str, bool]] = {
    # requests
    "ConnectTimeout": ("connect timeout", False),
    "ReadTimeout": READ_TIMEOUT,
    "ProxyError": PROXY_FAILED,  # also urllib3's: it could not reach the proxy, or the tunnel was refused
    # the ssl module's, as the cause of urllib3's SSLError
    "SSLCertVerificationError": TLS_NOT_VERIFIED,
    # urllib3, as the reason of a requests ConnectionError or the error it wraps
    "NewConnectionError": COULD_NOT_CONNECT,
    "NameResolutionError": COULD_NOT_CONNECT,
    "ConnectTimeoutError": COULD_NOT_CONNECT,
    "ReadTimeoutError": READ_TIMEOUT,
    # aiohttp
    "ClientConnectorCertificateError": TLS_NOT_VERIFIED,
    "ClientProxyConnectionError": PROXY_FAILED,
    "ClientHttpProxyError": PROXY_FAILED,
    "ClientConnectorError": COULD_NOT_CONNECT,
    "ConnectionTimeoutError": COULD_NOT_CONNECT,
    "ServerTimeoutError": READ_TIMEOUT,
    # asyncio's, raised by aiohttp when the session's total timeout (the deadline) ran out
    "TimeoutError": DEADLINE_PASSED,
}


def transport_error(method: str, path: str, exc: BaseException, timeout: float | None = None) -> OpusTransportError:
    """
    Name what happened on the wire, and whether the server can have seen the request.

    Anything the table does not know is a dropped connection after the request was sent:
    the safe assumption for calls that bill.

    :param method: the HTTP method called.
    :param path: the path called (no host, no query string with a signature).
    :param exc: the exception requests or aiohttp raised.
    :param timeout: the deadline of the call in seconds, named when it was what ran out.
    """
    # requests wraps urllib3's error, which may wrap its reason, which may wrap the ssl module's error
    inner = exc.args[0] if exc.args else None
    wrapped = getattr(inner, "reason", None)
    innermost = wrapped.args[0] if isinstance(wrapped, BaseException) and wrapped.args else None
    for cause in (exc, inner, wrapped, innermost):
        for cls in type(cause).__mro__ if isinstance(cause, BaseException) else ():
            if cls.__name__ in TRANSPORT_FAILURES:
                reason, request_sent = TRANSPORT_FAILURES[cls.__name__]
                if (reason, request_sent) == DEADLINE_PASSED:
                    return deadline_error(method, path, timeout)
                return OpusTransportError(method, path, reason, request_sent=request_sent)
    return OpusTransportError(method, path, f"connection dropped ({type(exc).__name__})", request_sent=True)


def deadline_error(method: str, path: str, timeout: float | None) -> OpusTransportError:
    """
    Say that the answer did not arrive whole within the call's deadline.

    The request was sent (a deadline that runs out while connecting is a connect timeout), so
    the server may have acted: a call that bills is not sent again.

    :param method: the HTTP method called.
    :param path: the path called.
    :param timeout: the deadline in seconds (the connection's ``timeout``).
    """
    limit = f"{timeout:g} s" if timeout is not None else "its timeout"
    return OpusTransportError(method, path, f"the response took longer than {limit}", request_sent=True)


class ResponseBody:
    """
    A response body read chunk by chunk, of which at most :data:`MAX_RESPONSE_BYTES` are kept.

    A 2xx answer over the limit is an :class:`~airflow_provider_opus.exceptions.OpusResponseError`
    (it cannot be used); of an error answer the first bytes are kept for its message, so that the
    status still decides what the error is and whether it is retried.

    :param method: the HTTP method called.
    :param path: the path called.
    :param status_code: the response's HTTP status.
    :param content_length: the ``Content-Length`` header, if any: a body announced too large is
        refused before a byte of it is read.
    """

    def __init__(self, method: str, path: str, status_code: int, content_length: str | int | None) -> None:
        self._method, self._path, self._status_code = method, path, status_code
        self._chunks: list[bytes] = []
        self._size = 0
        self.wants_more = True
        try:
            announced = int(content_length) if content_length is not None else None
        except ValueError:
            announced = None
        if announced is not None and announced > MAX_RESPONSE_BYTES:
            self._over_limit()

    def add(self, chunk: bytes) -> bool:
        """
        Keep a chunk of the body; return whether to read on.

        :param chunk: the next bytes of the body.
        """
        room = MAX_RESPONSE_BYTES - self._size
        if len(chunk) > room:
            chunk = chunk[:room]
            self._over_limit()
        self._chunks.append(chunk)
        self._size += len(chunk)
        return self.wants_more

    @property
    def content(self) -> bytes:
        """The body read (cut at the limit for an error answer)."""
        return b"".join(self._chunks)

    def _over_limit(self) -> None:
        self.wants_more = False
        if 200 <= self._status_code < 300:
            raise OpusResponseError(
                self._method,
                self._path,
                f"the response was larger than {MAX_RESPONSE_BYTES} bytes, more than any Opus answer",
                status_code=self._status_code,
            )


# -- requests: a deadline for the whole exchange -----------------------------------------------

_watches = threading.local()


class DeadlineWatch:
    """
    End a blocking ``requests`` call that outlasts its deadline, however slowly the server sends.

    ``requests`` bounds each socket read, not the whole answer: a server that sends a byte now
    and then holds the call for ever. Within ``with DeadlineWatch(...)``, connections of a session
    set up by :func:`mount_deadline_adapters` report their socket when they start reading the
    response (so the request is sent); at the deadline a timer shuts that socket down, the read
    ends at once, and :attr:`expired` says why.

    :param seconds: the deadline, from entering the ``with`` block.
    :param from_response: count the deadline from when the response is awaited instead, for an
        upload whose sending takes as long as the file is large.
    """

    def __init__(self, seconds: float, *, from_response: bool = False) -> None:
        self.seconds = seconds
        self.from_response = from_response
        #: The deadline passed while the call ran.
        self.expired = False
        #: The request was sent whole and the response awaited.
        self.request_sent = False
        self._lock = threading.Lock()
        self._sock: Any = None
        self._timer: threading.Timer | None = None
        self._done = False

    def __enter__(self) -> DeadlineWatch:
        _watches.current = self
        if not self.from_response:
            self._start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _watches.current = None
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()

    def response_awaited(self, sock: Any) -> None:
        """
        Note that the request is sent and its response is read from ``sock``.

        :param sock: the connection's socket.
        """
        with self._lock:
            self.request_sent = True
            self._sock = sock
            if self.expired:
                self._shut_down()
        if self.from_response:
            self._start()

    def _start(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if not self._done:
                self.expired = True
                self._shut_down()

    def _shut_down(self) -> None:
        # Shut down, not close: the reading thread owns the socket and closes it; a shutdown ends
        # its blocked read at once. An SSL socket's own shutdown() would drop its TLS state under
        # the reader, so the plain socket's method is called on it (an SSL transport inside a
        # proxy tunnel keeps its socket in .socket).
        sock = self._sock if isinstance(self._sock, socket.socket) else getattr(self._sock, "socket", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already closed: nothing left to stop
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def current_deadline_watch() -> DeadlineWatch | None:
    """Return the :class:`DeadlineWatch` of the call running on this thread, if any."""
    return getattr(_watches, "current", None)


def mount_deadline_adapters(session: requests.Session) -> None:
    """
    Make ``session``'s connections report to the :class:`DeadlineWatch` of the call using them.

    :param session: a session of one of the hooks.
    """
    adapter = _deadline_adapter_class()()
    session.mount("https://", adapter)
    session.mount("http://", adapter)


@functools.cache
def _deadline_adapter_class() -> type[requests.adapters.HTTPAdapter]:
    # Built on first use: requests and urllib3 are imported when a hook first calls, not when a
    # DAG file imports the provider.
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class ReportsResponse:
        sock: Any

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            watch = current_deadline_watch()
            if watch is not None:
                watch.response_awaited(self.sock)
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]

    class ReportingHTTPConnection(ReportsResponse, HTTPConnection):
        pass

    class ReportingHTTPSConnection(ReportsResponse, HTTPSConnection):
        pass

    class ReportingHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = ReportingHTTPConnection

    class ReportingHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = ReportingHTTPSConnection

    standard = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}
    reporting = {"http": ReportingHTTPConnectionPool, "https": ReportingHTTPSConnectionPool}

    def report(manager: Any) -> Any:
        # Only urllib3's own pools are swapped (a SOCKS proxy's are left as they are; there the
        # per-read timeout still holds).
        if getattr(manager, "pool_classes_by_scheme", None) == standard:
            manager.pool_classes_by_scheme = reporting
        return manager

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            report(self.poolmanager)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            return report(super().proxy_manager_for(proxy, **proxy_kwargs))

    return DeadlineAdapter


# -- proxy and TLS, from the connection settings, for each library ------------------------------


def requests_network(settings: OpusConnectionSettings, url: str) -> dict[str, Any]:
    """
    Return the proxy and TLS arguments of a ``requests`` call to ``url``, by the connection's rules.

    Given with every request, as the async hook gives its proxy (``settings.proxy_for``): the
    sessions do not read the environment (``trust_env`` is off), so that no ``~/.netrc``
    credentials are added.

    :param settings: the connection settings.
    :param url: the whole URL of the request (the API's or a presigned storage URL).
    """
    proxy = settings.proxy_for(url)
    return {"proxies": {"http": proxy, "https": proxy} if proxy else {}, "verify": settings.tls_verify}


def aiohttp_ssl(settings: OpusConnectionSettings) -> ssl.SSLContext | bool:
    """
    Return the ``ssl`` argument of the async hook's connector: the same trust as :func:`requests_network`.

    The CA bundle when the connection sets one, else certifi's public CAs (what ``requests``
    trusts), so that a certificate the blocking hook accepts is accepted in the triggerer too;
    False when ``verify_tls`` is off. Loaded once per file, not per session.

    :param settings: the connection settings.
    """
    verify = settings.tls_verify
    if verify is False:
        return False
    if verify is True:
        from requests.utils import DEFAULT_CA_BUNDLE_PATH  # certifi's, which requests trusts

        verify = DEFAULT_CA_BUNDLE_PATH
    return verifying_context(verify)
