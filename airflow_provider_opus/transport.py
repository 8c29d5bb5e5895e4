"""The wire under both hooks: what a failed request means, how large an answer may be, proxy and TLS.

A request that fails before a response arrives raises a library's own exception;
:func:`transport_error` turns it into an :class:`~airflow_provider_opus.exceptions.OpusTransportError`
that says what happened and whether the server can have seen the request (what the retry policy
needs to know before it sends a billed call again).

A response body is read chunk by chunk into a :class:`ResponseBody`, which keeps at most
:data:`MAX_RESPONSE_BYTES`, so an oversized answer cannot fill the memory. How long a call may
take is each hook's: the blocking hook checks its deadline between the reads of that loop, the
async hook's session has ``aiohttp``'s total timeout.

Both hooks take their proxy and CAs from the one rule of the connection settings
(:meth:`~airflow_provider_opus.connection.OpusConnectionSettings.proxy_for` and
:attr:`~airflow_provider_opus.connection.OpusConnectionSettings.tls_verify`), put in each
library's terms here: :func:`requests_network` and :func:`aiohttp_ssl`.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.connection import verifying_context
from airflow_provider_opus.exceptions import OpusRequestError, OpusResponseError, OpusTLSError, OpusTransportError

if TYPE_CHECKING:
    from airflow_provider_opus.connection import OpusConnectionSettings

#: The largest response body read, in bytes. Opus answers with small JSON (a results object with
#: file URLs, an audit trail); a larger body is not an answer to use, and reading it would only
#: fill the memory of a worker or the triggerer.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Bytes read at a time, so that memory stays within the limit above while a body arrives.
READ_CHUNK_BYTES = 64 * 1024

COULD_NOT_CONNECT = ("could not connect", False)
READ_TIMEOUT = ("read timeout", True)
#: Stands for the reason :func:`response_too_slow` words, with the timeout in it.
TOO_SLOW = ("too slow", True)
#: The proxy was unreachable or refused the tunnel (a 407 or 502 to CONNECT): nothing reached Opus.
PROXY_FAILED = (
    "could not connect through the proxy: check the connection's proxy_url, or HTTPS_PROXY, HTTP_PROXY and "
    "NO_PROXY in the environment of the worker or triggerer",
    False,
)
#: A proxy that forwards plain http dropped the connection after the request went to it: Opus may have it.
PROXY_DROPPED = ("the proxy closed the connection after the request was sent to it", True)
#: The body arrived but its Content-Encoding could not be decoded: reading it again gives the same bytes.
NOT_DECODABLE = ("the response body could not be decoded (its Content-Encoding is broken)", True)
#: The server's certificate was not trusted: the handshake ended before the request was sent.
TLS_NOT_VERIFIED = (
    "TLS verification failed: the server's certificate is not signed by a trusted CA or does not name the host; "
    "set the connection's ca_bundle to your CA's PEM file",
    False,
)


def transport_error(method: str, path: str, exc: BaseException, timeout: float | None = None) -> OpusRequestError:
    """
    Name what happened on the wire, and whether the server can have seen the request.

    Anything not known here is a dropped connection after the request was sent: the safe
    assumption for calls that bill. A proxy's failure counts as "not sent" only when the proxy
    could not be reached or refused the tunnel; an untrusted certificate is an
    :class:`~airflow_provider_opus.exceptions.OpusTLSError` (nothing sent, and not retried in place); a
    body that cannot be decoded an :class:`~airflow_provider_opus.exceptions.OpusResponseError` (not retried).

    :param method: the HTTP method called.
    :param path: the path called (no host, no query string with a signature).
    :param exc: the exception requests, urllib3 or aiohttp raised.
    :param timeout: the call's timeout in seconds, named when it was what ran out.
    """
    import requests
    from urllib3.exceptions import HTTPError

    requests_failure = isinstance(exc, (requests.RequestException, HTTPError))
    meaning = _requests_failure(exc) if requests_failure else _aiohttp_failure(exc)
    if meaning is TOO_SLOW:
        return response_too_slow(method, path, timeout)
    if meaning is None:
        return OpusTransportError(method, path, f"connection dropped ({type(exc).__name__})", request_sent=True)
    if meaning is NOT_DECODABLE:
        return OpusResponseError(method, path, NOT_DECODABLE[0])
    reason, request_sent = meaning
    error_class = OpusTLSError if meaning is TLS_NOT_VERIFIED else OpusTransportError
    return error_class(method, path, reason, request_sent=request_sent)


def _requests_failure(exc: BaseException) -> tuple[str, bool] | None:
    import requests
    import urllib3.exceptions as urllib3_errors

    if isinstance(exc, (requests.exceptions.ContentDecodingError, urllib3_errors.DecodeError)):
        return NOT_DECODABLE
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ("connect timeout", False)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return READ_TIMEOUT
    # requests wraps urllib3's error (a MaxRetryError names its reason), which may wrap the ssl module's.
    inner = exc.args[0] if isinstance(exc, requests.RequestException) and exc.args else exc
    cause = getattr(inner, "reason", None) or inner
    if isinstance(cause, urllib3_errors.SSLError):
        return TLS_NOT_VERIFIED if cause.args and isinstance(cause.args[0], ssl.SSLCertVerificationError) else None
    if isinstance(cause, urllib3_errors.ProxyError):
        # urllib3 says "Unable to connect to proxy" also when a plain-http proxy forwarded the request
        # and then dropped the connection: only a failed connect or a refused tunnel proves nothing was sent.
        original = getattr(cause, "original_error", None)
        refused_tunnel = isinstance(original, OSError) and "Tunnel connection failed" in str(original)
        connect_failed = isinstance(original, (urllib3_errors.NewConnectionError, urllib3_errors.ConnectTimeoutError))
        return PROXY_FAILED if refused_tunnel or connect_failed else PROXY_DROPPED
    if isinstance(cause, urllib3_errors.ConnectTimeoutError):  # also NewConnectionError, NameResolutionError
        return COULD_NOT_CONNECT
    if isinstance(cause, urllib3_errors.ReadTimeoutError):
        return READ_TIMEOUT
    return None


def _aiohttp_failure(exc: BaseException) -> tuple[str, bool] | None:
    import aiohttp
    from aiohttp.http_exceptions import ContentEncodingError

    if isinstance(exc, aiohttp.ClientPayloadError) and (
        isinstance(exc.__cause__, ContentEncodingError) or "content-encoding" in str(exc).lower()
    ):
        return NOT_DECODABLE
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TLS_NOT_VERIFIED
    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return PROXY_FAILED
    # aiohttp 3.10+ says a connect timeout with a ServerTimeoutError of its own; 3.9 has no such class.
    if isinstance(exc, (aiohttp.ClientConnectorError, getattr(aiohttp, "ConnectionTimeoutError", ()))):
        return COULD_NOT_CONNECT
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return READ_TIMEOUT
    if isinstance(exc, asyncio.TimeoutError):  # the session's total timeout ran out
        return TOO_SLOW
    return None


def response_too_slow(method: str, path: str, timeout: float | None) -> OpusTransportError:
    """
    Say that the answer did not arrive whole within the call's timeout.

    The request was sent (a timeout while connecting is a connect timeout), so the server may
    have acted: a call that bills is not sent again.

    :param method: the HTTP method called.
    :param path: the path called.
    :param timeout: the connection's ``timeout`` in seconds.
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
