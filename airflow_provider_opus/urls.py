"""What a URL is, judged once: the host every HTTP parser reads in it (:func:`reads_alike`), and how it is shown."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_opus.exceptions import OpusInvalidArgumentError


def checked_callback_url(value: Any, name: str) -> str | None:
    """
    Return a callback URL fit to send as ``callbackUrl``: ``https``, or ``http`` to a loopback host; None if unset.

    :param value: the URL as given (the connection's ``callback_url`` or an operator's argument).
    :param name: where it was given, for the message.
    :raises OpusInvalidArgumentError: it is not such a URL; the message names ``name`` and the fix.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else ""
    host = urlsplit(text).hostname if reads_alike(text, credentials=True) else None
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):  # not an IP address
        loopback = loopback or ipaddress.ip_address(host or "").is_loopback
    if not host or not (text.lower().startswith("https:") or loopback):
        raise OpusInvalidArgumentError(
            f"{name} {redacted_url(text) if text else value!r} is not a URL Opus can send the job's result to: give "
            "an absolute https URL of an endpoint you control, e.g. https://hooks.example.com/opus (http only to "
            "localhost, for tests)."
        )
    return text


def checked_url(url: Any, name: str) -> str:
    r"""
    Return ``url`` if it passes :func:`reads_alike`: ``http://EVIL\@API/f`` is API to urlsplit, EVIL to others.

    :param url: a URL from Opus (an output file, a redirect) or a user.
    :param name: what it is, for the message.
    :raises OpusInvalidArgumentError: it is not such a URL (see :func:`reads_alike`).
    """
    if not isinstance(url, str) or not reads_alike(url):
        raise OpusInvalidArgumentError(
            f"{name} {url!r} is not a plain http(s) URL: it must have a host, no credentials before it, and no "
            "spaces, backslashes or control characters (parsers disagree on the host of such a URL)."
        )
    return url


def reads_alike(text: str, *, credentials: bool = False) -> bool:
    """
    Tell whether urlsplit and yarl (aiohttp's) read one http(s) host and port (not 0) in ``text``, and nothing odd.

    :param text: a URL.
    :param credentials: allow ``user:password@`` before the host (a connection's host or proxy may carry them).
    """
    from yarl import URL

    if not text or not all("!" <= char <= "~" and char != "\\" for char in text):
        return False
    try:
        parts, yarl_url = urlsplit(text), URL(text)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:  # a bad port, an unclosed "[", a host yarl refuses
        return False
    return (
        parts.scheme.lower() in ("http", "https")
        and bool(host)
        and port != 0
        and (credentials or "@" not in parts.netloc)
        and (yarl_url.host or "").lower().strip("[]") == host
        and yarl_url.explicit_port == port
    )


def origin_of(url: str) -> str:
    """Return ``scheme://host:port`` of a URL :func:`reads_alike` accepts, the port explicit."""
    parts = urlsplit(url)  # the scheme and host in lower case
    return f"{parts.scheme}://{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def redacted_url(url: str) -> str:
    """
    Return ``url`` with whatever precedes its host (where credentials go) replaced by ``***``.

    :param url: a URL as given, which may hold ``user:password@``.
    """
    return re.sub(r"^(.*?://)?.*@", r"\1***@", url, flags=re.DOTALL)
