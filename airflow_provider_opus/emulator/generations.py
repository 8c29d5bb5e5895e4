"""
The two generations of the Opus API the emulator serves, and the rules the current one adds.

``legacy`` is the API reference the provider started from (``{"results": ...}`` results, an event-list
audit trail, lenient bodies). ``current`` is what Opus publishes today: strict bodies, a required
``callbackUrl``, workflow versions, a 10 MB upload limit, results as ``jobResultsPayloadSchema`` only
and a node-level audit. The generation is chosen per emulator and can be changed at run time.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_opus.emulator.errors import BadRequest

CURRENT = "current"
LEGACY = "legacy"
#: The generations an emulator can serve; the first is the default.
API_GENERATIONS = (CURRENT, LEGACY)
DEFAULT_API = CURRENT

#: The most bytes a PUT to a presigned URL may carry in the current generation ("10 MB per file"; S3's
#: MB are MiB, and taking the larger reading keeps a file the real service takes from being refused here).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024

# What the server accepts, written out here rather than taken from the provider's files.py: the
# emulator checks the client, so it must not share the client's rules (a wrong table there would
# pass against an emulator that read it).
FILE_EXTENSIONS = ("jpeg", "png", "jpg", "pdf", "docx", "csv", "xls", "xlsx", "txt", "json", "html", "xml")
ACCESS_SCOPES = ("all", "user", "workspace", "organization")

#: Where a job may come from (``source`` on ``POST /job/initiate``).
JOB_SOURCES = ("email-agent", "chat-agent", "scheduled", "api", "manual", "agent", "opus-ai", "web-app")
DEFAULT_JOB_SOURCE = "api"


def check_api(api: Any, name: str = "api") -> str:
    """
    Validate a generation name.

    :param api: the value to check.
    :param name: what to call it in the error.
    :return: the generation, one of :data:`API_GENERATIONS`.
    :raises BadRequest: for anything else.
    """
    if api not in API_GENERATIONS:
        raise BadRequest(f"{name} must be one of {', '.join(API_GENERATIONS)}, got {api!r}")
    return str(api)


def is_http_url(url: Any) -> bool:
    """Tell whether a value is an absolute ``http(s)://`` URL with a host."""
    if not isinstance(url, str) or not url.strip():
        return False
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def is_loopback_url(url: str) -> bool:
    """
    Tell whether an http(s) URL names a loopback host: ``localhost``, ``127.0.0.0/8`` or ``::1``.

    Only the host as written counts; no name is looked up, so a name that resolves to loopback elsewhere
    (or a DNS answer that changes) cannot make the emulator post to another machine.
    """
    if not is_http_url(url):
        return False
    host = (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
