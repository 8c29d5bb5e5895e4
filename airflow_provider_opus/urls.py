"""What a URL is, judged once for every place the provider takes one: which host it reaches, and how it is shown.

A URL is judged by the host the HTTP library will connect to (:func:`checked_url`): the service key
goes only where the connection allows (:func:`origin_of`), a callback URL must be one Opus can reach
(:func:`checked_callback_url`), and a URL in a message loses its credentials (:func:`redacted_url`).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_opus.exceptions import OpusInvalidArgumentError


def checked_callback_url(value: Any, name: str) -> str | None:
    """
    Return a callback URL fit to send as ``callbackUrl``, or None when none is set.

    Opus POSTs the job's result to it, so it must be a whole URL Opus can reach: ``https``, or
    ``http`` only to a loopback host (a local emulator or a test receiver).

    :param value: the URL as given (the connection's ``callback_url`` or an operator's argument).
    :param name: where it was given, for the message.
    :raises OpusInvalidArgumentError: it is not such a URL; the message names ``name`` and the fix.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else ""
    try:
        parts = urlsplit(text)
        host_ok = bool(parts.hostname) and parts.port != 0
    except ValueError:  # a bad port or an unclosed "[" in the host
        parts, host_ok = urlsplit(""), False
    printable = all("!" <= char <= "~" for char in text)
    loopback_http = parts.scheme == "http" and _is_loopback(parts.hostname or "")
    if not (printable and host_ok and (parts.scheme == "https" or loopback_http)):
        shown = redacted_url(text) if text else value
        raise OpusInvalidArgumentError(
            f"{name} {shown!r} is not a URL Opus can send the job's result to: give an absolute https URL of an "
            "endpoint you control, e.g. https://hooks.example.com/opus (http only to localhost, for tests)."
        )
    return text


def checked_url(url: Any, name: str) -> str:
    r"""
    Return ``url`` if the host every parser reads in it is the one the HTTP library connects to.

    A URL is judged by the host the library will connect to: ``http://EVIL\@API/f`` is API to
    ``urlsplit`` but EVIL to some HTTP libraries, so a check by one parser would send the service key to
    the other host. Refused: anything but printable ASCII, a space or a backslash, credentials
    before the host (``user@``), no http(s) scheme or host, a bad port, and any URL that ``urlsplit``,
    urllib3 (``requests``) and yarl (``aiohttp``) do not all read with the same host and port.

    :param url: a URL from Opus (an output file, a redirect) or a user.
    :param name: what it is, for the message.
    :raises OpusInvalidArgumentError: it is not such a URL; the message shows it without query or credentials.
    """
    text = url if isinstance(url, str) else ""
    if not reads_alike(text):
        raise OpusInvalidArgumentError(
            f"{name} {url!r} is not a plain http(s) URL: it must have a host, no credentials before it, and no "
            "spaces, backslashes or control characters (parsers disagree on the host of such a URL)."
        )
    return text


def reads_alike(text: str, *, credentials: bool = False) -> bool:
    """
    Tell whether ``urlsplit``, urllib3 and yarl read one http(s) host and port in ``text``, and nothing odd.

    :param text: a URL.
    :param credentials: allow ``user:password@`` before the host (a connection's host may carry them).
    """
    from urllib3.util import parse_url
    from yarl import URL

    if not text or not all("!" <= char <= "~" and char != "\\" for char in text):
        return False
    try:
        parts = urlsplit(text)
        host, port = (parts.hostname or "").lower(), parts.port
        other = parse_url(text)
        yarl_url = URL(text)
    except ValueError:  # a bad port, an unclosed "[", a host urllib3 or yarl refuses
        return False
    if parts.scheme.lower() not in ("http", "https") or not host or ("@" in parts.netloc and not credentials):
        return False
    return (
        (other.host or "").lower().strip("[]") == host
        and other.port == port
        and (yarl_url.host or "").lower().strip("[]") == host
        and yarl_url.explicit_port == port
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """Return ``scheme://host:port`` of an http(s) URL, the port explicit and the host in lower case."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        port = 0  # a port out of range: an origin nothing matches
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def redacted_url(url: str) -> str:
    """
    Return ``url`` with whatever precedes its host (where credentials go) replaced by ``***``.

    :param url: a proxy URL as given, which may hold ``user:password@``.
    """
    if "@" not in url:
        return url
    scheme, sep, _ = url.partition("://")
    host = url.rpartition("@")[2]
    return f"{scheme}://***@{host}" if sep else f"***@{host}"
