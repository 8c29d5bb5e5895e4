"""The wire under both hooks: what a failed request means, how large an answer may be, proxy and TLS.

:func:`transport_error` names a library's failure and says whether Opus can have seen the request;
:class:`ResponseBody` keeps at most :data:`MAX_RESPONSE_BYTES` of an answer; :func:`exchange` makes one call on
the running loop's shared session, for both hooks (the blocking one runs it on a private loop).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.connection import USER_AGENT, verifying_context
from airflow_provider_opus.exceptions import OpusRequestError, OpusResponseError, OpusTLSError, OpusTransportError

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator

    import aiohttp

    from airflow_provider_opus.connection import OpusConnectionSettings

#: The largest response body read, in bytes: Opus answers with small JSON, so more would only fill memory.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Bytes read at a time.
READ_CHUNK_BYTES = 64 * 1024

_PROXY_FAILED = (
    "could not connect through the proxy: check the connection's proxy_url, or HTTPS_PROXY, HTTP_PROXY and "
    "NO_PROXY in the environment of the worker or triggerer"
)
_UNDECODABLE = "the response body could not be decoded (its Content-Encoding is broken)"
_UNTRUSTED = (
    "TLS verification failed: the server's certificate is not signed by a trusted CA or does not name the host; "
    "set the connection's ca_bundle to your CA's PEM file"
)
#: The failures that prove the request never reached Opus; every other one may have been acted on.
_NOT_SENT = {"could not connect", "connect timeout", _PROXY_FAILED, _UNTRUSTED}


def transport_error(method: str, path: str, exc: BaseException, timeout: float | None = None) -> OpusRequestError:
    """
    Name what happened on the wire, and whether the server can have seen the request.

    An unknown failure counts as a connection dropped after the request was sent: the safe assumption.

    :param method: the HTTP method called.
    :param path: the path called (no host, no query string with a signature).
    :param exc: the exception aiohttp raised.
    :param timeout: the call's timeout in seconds, named when it was what ran out.
    """
    import aiohttp
    from aiohttp.http_exceptions import ContentEncodingError

    if isinstance(exc, aiohttp.ClientPayloadError) and (
        isinstance(exc.__cause__, ContentEncodingError) or "content-encoding" in str(exc).lower()
    ):
        return OpusResponseError(method, path, _UNDECODABLE)  # reading it again gives the same bytes
    # In this order: the first two are ClientConnectorErrors too. aiohttp 3.10+ says a connect timeout
    # with a ServerTimeoutError of its own, ConnectionTimeoutError; 3.9 has no such class.
    meanings: list[tuple[Any, str]] = [
        (aiohttp.ClientConnectorCertificateError, _UNTRUSTED),
        ((aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError), _PROXY_FAILED),
        ((aiohttp.ClientConnectorError, getattr(aiohttp, "ConnectionTimeoutError", ())), "could not connect"),
        (aiohttp.ServerTimeoutError, "read timeout"),
    ]
    reason = next((reason for classes, reason in meanings if isinstance(exc, classes)), None)
    if reason is None and isinstance(exc, asyncio.TimeoutError):  # the session's total timeout ran out
        return response_too_slow(method, path, timeout)
    reason = reason or f"connection dropped ({type(exc).__name__})"
    error_class = OpusTLSError if reason == _UNTRUSTED else OpusTransportError
    return error_class(method, path, reason, request_sent=reason not in _NOT_SENT)


def response_too_slow(method: str, path: str, timeout: float | None) -> OpusTransportError:
    """
    Say that the answer did not arrive whole within the call's timeout (the request was sent).

    :param method: the HTTP method called.
    :param path: the path called.
    :param timeout: the connection's ``timeout`` in seconds.
    """
    limit = f"{timeout:g} s" if timeout is not None else "its timeout"
    return OpusTransportError(method, path, f"the response took longer than {limit}", request_sent=True)


class ResponseBody:
    """
    A response body read chunk by chunk, of which at most :data:`MAX_RESPONSE_BYTES` are kept.

    A 2xx answer over the limit is an :class:`~airflow_provider_opus.exceptions.OpusResponseError`; of an
    error answer the first bytes are kept for its message, so that its status still decides the error.

    :param method: the HTTP method called.
    :param path: the path called.
    :param status_code: the response's HTTP status.
    :param content_length: the ``Content-Length`` header, if any: a body announced too large is refused unread.
    """

    def __init__(self, method: str, path: str, status_code: int, content_length: str | int | None) -> None:
        self._method, self._path, self._status_code = method, path, status_code
        self._body = bytearray()
        self.wants_more = True
        with contextlib.suppress(ValueError):  # not a number: the bytes are counted as they come
            if int(content_length or 0) > MAX_RESPONSE_BYTES:
                self._over_limit()

    def add(self, chunk: bytes) -> bool:
        """
        Keep a chunk of the body; return whether to read on.

        :param chunk: the next bytes of the body.
        """
        room = MAX_RESPONSE_BYTES - len(self._body)
        if len(chunk) > room:
            self._over_limit()
        self._body += chunk[:room]
        return self.wants_more

    @property
    def content(self) -> bytes:
        """The body read."""
        return bytes(self._body)

    def _over_limit(self) -> None:
        self.wants_more = False
        if 200 <= self._status_code < 300:
            message = f"the response was larger than {MAX_RESPONSE_BYTES} bytes, more than any Opus answer"
            raise OpusResponseError(self._method, self._path, message, status_code=self._status_code)


def aiohttp_ssl(settings: OpusConnectionSettings) -> ssl.SSLContext | bool:
    """
    Return a connector's ``ssl``: the connection's CA bundle, else certifi's CAs; False without ``verify_tls``.

    Loaded once per file, not per session.

    :param settings: the connection settings.
    """
    verify = settings.tls_verify
    if verify is True:
        import certifi

        verify = certifi.where()
    return verifying_context(verify) if verify else False


#: Each running loop's sessions (the API's by settings, the bare storage one by ``(settings,)``), and the async
#: generator that closes them when the loop shuts down (asyncio.run, or a hook's private loop closing).
_by_loop: dict[asyncio.AbstractEventLoop, tuple[dict[Any, aiohttp.ClientSession], AsyncGenerator[None, None]]] = {}


def loop_session(key: Any) -> aiohttp.ClientSession | None:
    """
    Return the running loop's open session for ``key`` (settings: the API's; ``(settings,)``: storage), if any.

    :param key: the settings, or a 1-tuple of them for the storage session.
    """
    try:
        session = _by_loop[asyncio.get_running_loop()][0][key]
    except (RuntimeError, KeyError):  # no running loop, or no session for these settings on it
        return None
    return None if session.closed else session


async def new_session(key: Any) -> aiohttp.ClientSession:
    """
    Open the running loop's session for ``key`` (see :func:`loop_session`); closed when the loop shuts down.

    :param key: the settings, or a 1-tuple of them for the storage session (no key, no decoding).
    """
    import aiohttp

    loop = asyncio.get_running_loop()
    if loop not in _by_loop:
        _by_loop[loop] = ({}, _close_at_shutdown(loop))
        await _by_loop[loop][1].__anext__()  # its first step registers it with the loop
    storage = isinstance(key, tuple)
    settings = key[0] if storage else key
    # total: a whole call's deadline, body included; sock_connect finds a dead host fast. No trust_env: the
    # proxy is settings.proxy_for's, and nothing else (no ~/.netrc credentials) comes from the environment.
    timeout = aiohttp.ClientTimeout(total=settings.timeout, sock_connect=settings.connect_timeout)
    connector = aiohttp.TCPConnector(ssl=aiohttp_ssl(settings))
    headers = {"User-Agent": USER_AGENT} if storage else settings.api_headers
    session = aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector, auto_decompress=not storage)
    _by_loop[loop][0][key] = session
    return session


async def _close_at_shutdown(loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        sessions = _by_loop.pop(loop)[0].values()
        await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)


def per_read_timeout(settings: OpusConnectionSettings) -> aiohttp.ClientTimeout:
    """
    Return a file transfer's timeout: no deadline for the whole call (a file takes its time), each read the timeout.

    :param settings: the connection settings.
    """
    import aiohttp

    return aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout, sock_read=settings.timeout)


async def exchange(
    settings: OpusConnectionSettings,
    method: str,
    url: str,
    path: str,
    proxy: str | None,
    *,
    storage: bool = False,
    **kwargs: Any,
) -> tuple[int, bytes, str | None]:
    """
    Make one request on the running loop's session and read its answer up to :data:`MAX_RESPONSE_BYTES`.

    The whole call, answer included, is bounded by the session's total timeout (a request may pass its own).

    :param settings: the connection settings.
    :param method: the HTTP method.
    :param url: the whole URL.
    :param path: the path, for messages (no host, no signature).
    :param proxy: the proxy to go through, or None.
    :param storage: use the storage session (no service key, no decoding) instead of the API's.
    :param kwargs: more arguments of ``ClientSession.request`` (a JSON body, headers, a timeout, a body).
    :return: the status, the body read, and the ``Retry-After`` header.
    """
    import aiohttp

    key = (settings,) if storage else settings
    session = loop_session(key) or await new_session(key)
    try:
        async with session.request(method, url, allow_redirects=False, proxy=proxy, **kwargs) as response:
            body = ResponseBody(method, path, response.status, response.content_length)
            if body.wants_more:
                async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
                    if not body.add(chunk):
                        break
            return response.status, body.content, response.headers.get("Retry-After")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise transport_error(method, path, exc, settings.timeout) from None
