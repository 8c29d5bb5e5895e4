"""The wire under both hooks: what a failed request means, how large an answer may be, proxy and TLS.

:func:`transport_error` names a library's failure and says whether Opus can have seen the request;
:class:`ResponseBody` keeps at most :data:`MAX_RESPONSE_BYTES` of an answer; :func:`requests_network`
and :func:`aiohttp_ssl` put the connection's proxy and CAs in each library's terms.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.connection import verifying_context
from airflow_provider_opus.exceptions import OpusRequestError, OpusResponseError, OpusTLSError, OpusTransportError

if TYPE_CHECKING:
    from airflow_provider_opus.connection import OpusConnectionSettings

#: The largest response body read, in bytes: Opus answers with small JSON, so more would only fill memory.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Bytes read at a time.
READ_CHUNK_BYTES = 64 * 1024

_PROXY_FAILED = (
    "could not connect through the proxy: check the connection's proxy_url, or HTTPS_PROXY, HTTP_PROXY and "
    "NO_PROXY in the environment of the worker or triggerer"
)
_PROXY_DROPPED = "the proxy closed the connection after the request was sent to it"
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
    :param exc: the exception requests, urllib3 or aiohttp raised.
    :param timeout: the call's timeout in seconds, named when it was what ran out.
    """
    import requests
    from urllib3.exceptions import HTTPError

    if isinstance(exc, (requests.RequestException, HTTPError)):
        reason = _requests_failure(exc)
    else:
        reason = _aiohttp_failure(exc)
        if reason is None and isinstance(exc, asyncio.TimeoutError):  # the session's total timeout ran out
            return response_too_slow(method, path, timeout)
    if reason == _UNDECODABLE:  # reading it again gives the same bytes
        return OpusResponseError(method, path, reason)
    reason = reason or f"connection dropped ({type(exc).__name__})"
    error_class = OpusTLSError if reason == _UNTRUSTED else OpusTransportError
    return error_class(method, path, reason, request_sent=reason not in _NOT_SENT)


def _requests_failure(exc: BaseException) -> str | None:
    import requests
    import urllib3.exceptions as errors

    if isinstance(exc, (requests.exceptions.ContentDecodingError, errors.DecodeError)):
        return _UNDECODABLE
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timeout"
    # requests wraps urllib3's error (a MaxRetryError names its reason), which may wrap the ssl module's.
    inner = exc.args[0] if isinstance(exc, requests.RequestException) and exc.args else exc
    cause = getattr(inner, "reason", None) or inner
    if isinstance(cause, errors.SSLError):
        return _UNTRUSTED if cause.args and isinstance(cause.args[0], ssl.SSLCertVerificationError) else None
    if isinstance(cause, errors.ProxyError):
        # urllib3 says "Unable to connect to proxy" also when a plain-http proxy forwarded the request
        # and then dropped the connection: only a failed connect or a refused tunnel proves nothing was sent.
        original = getattr(cause, "original_error", None)
        refused_tunnel = isinstance(original, OSError) and "Tunnel connection failed" in str(original)
        connect_failed = isinstance(original, (errors.NewConnectionError, errors.ConnectTimeoutError))
        return _PROXY_FAILED if refused_tunnel or connect_failed else _PROXY_DROPPED
    if isinstance(cause, errors.ConnectTimeoutError):  # also NewConnectionError, NameResolutionError
        return "could not connect"
    return "read timeout" if isinstance(cause, errors.ReadTimeoutError) else None


def _aiohttp_failure(exc: BaseException) -> str | None:
    import aiohttp
    from aiohttp.http_exceptions import ContentEncodingError

    if isinstance(exc, aiohttp.ClientPayloadError) and (
        isinstance(exc.__cause__, ContentEncodingError) or "content-encoding" in str(exc).lower()
    ):
        return _UNDECODABLE
    # In this order: the first two are ClientConnectorErrors too. aiohttp 3.10+ says a connect timeout
    # with a ServerTimeoutError of its own, ConnectionTimeoutError; 3.9 has no such class.
    meanings: list[tuple[Any, str]] = [
        (aiohttp.ClientConnectorCertificateError, _UNTRUSTED),
        ((aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError), _PROXY_FAILED),
        ((aiohttp.ClientConnectorError, getattr(aiohttp, "ConnectionTimeoutError", ())), "could not connect"),
        (aiohttp.ServerTimeoutError, "read timeout"),
    ]
    return next((reason for classes, reason in meanings if isinstance(exc, classes)), None)


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


def requests_network(settings: OpusConnectionSettings, url: str) -> dict[str, Any]:
    """
    Return the proxy and TLS arguments of a ``requests`` call to ``url``, by the connection's rules.

    Given with every request: the sessions do not read the environment (``trust_env`` is off, so no
    ``~/.netrc`` credentials are added).

    :param settings: the connection settings.
    :param url: the whole URL of the request (the API's or a presigned storage URL).
    """
    proxy = settings.proxy_for(url)
    return {"proxies": {"http": proxy, "https": proxy} if proxy else {}, "verify": settings.tls_verify}


def aiohttp_ssl(settings: OpusConnectionSettings) -> ssl.SSLContext | bool:
    """
    Return the ``ssl`` argument of the async hook's connector: the same trust as :func:`requests_network`.

    The CA bundle when the connection sets one, else certifi's CAs (what ``requests`` trusts); False
    when ``verify_tls`` is off. Loaded once per file, not per session.

    :param settings: the connection settings.
    """
    verify = settings.tls_verify
    if verify is True:
        from requests.utils import DEFAULT_CA_BUNDLE_PATH  # certifi's, which requests trusts

        verify = DEFAULT_CA_BUNDLE_PATH
    return verifying_context(verify) if verify else False
