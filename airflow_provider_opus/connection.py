"""The Airflow connection of type ``opus``: what the hooks need from it, read and checked in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_opus import __version__
from airflow_provider_opus.api import DEFAULT_APP_URL, DEFAULT_BASE_URL, SERVICE_KEY_HEADER
from airflow_provider_opus.exceptions import OpusConnectionConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Connection

DEFAULT_TIMEOUT = 30.0
#: Connecting is quick or not happening: a short connect timeout finds a dead host fast.
MAX_CONNECT_TIMEOUT = 10.0
USER_AGENT = f"airflow-provider-opus/{__version__}"


@dataclass(frozen=True)
class OpusConnectionSettings:
    """
    What the hooks need from an Airflow connection of type ``opus``, checked once.

    :param conn_id: the connection id (for error messages).
    :param base_url: API base URL without a trailing slash.
    :param service_key: the ``x-service-key``; never printed (excluded from ``repr``).
    :param timeout: seconds to wait for each response.
    :param app_url: base URL of the Opus web app, for links.
    """

    conn_id: str
    base_url: str
    service_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    app_url: str = DEFAULT_APP_URL

    @property
    def connect_timeout(self) -> float:
        """Seconds to wait for a TCP connection."""
        return min(MAX_CONNECT_TIMEOUT, self.timeout)

    @property
    def api_headers(self) -> dict[str, str]:
        """The headers of every API request; they carry the service key, so send them to ``base_url`` only."""
        return {SERVICE_KEY_HEADER: self.service_key, "Accept": "application/json", "User-Agent": USER_AGENT}

    @classmethod
    def from_connection(cls, conn: Connection, timeout: float | None = None) -> OpusConnectionSettings:
        """
        Read and check a connection.

        :param conn: the Airflow connection.
        :param timeout: a timeout that overrides the connection's ``timeout`` field.
        :raises OpusConnectionConfigError: no key, a bad URL or a bad timeout; the message says the fix.
        """
        conn_id = conn.conn_id
        if not conn.password:
            raise OpusConnectionConfigError(
                f"Opus connection {conn_id!r} has no service key: set its password (shown as "
                "'Service key') to an API key from Opus (My Organization > API Keys)."
            )
        extra = conn.extra_dejson or {}
        base_url = _base_url(conn)
        chosen_timeout = timeout if timeout is not None else _extra_field(extra, "timeout")
        try:
            timeout_seconds = float(chosen_timeout) if chosen_timeout not in (None, "") else DEFAULT_TIMEOUT
        except (TypeError, ValueError):
            timeout_seconds = -1.0
        if not timeout_seconds > 0:
            raise OpusConnectionConfigError(
                f"Opus connection {conn_id!r}: timeout must be a positive number of seconds, got {chosen_timeout!r}."
            )
        app_url = str(_extra_field(extra, "app_url") or DEFAULT_APP_URL).rstrip("/")
        return cls(conn_id, base_url, conn.password, timeout_seconds, app_url)


def _extra_field(extra: Mapping[str, Any], name: str) -> Any:
    # Airflow's connection form has stored custom fields both plain and prefixed.
    return extra.get(name, extra.get(f"extra__opus__{name}"))


def _base_url(conn: Connection) -> str:
    host = (conn.host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        scheme = conn.schema if conn.schema in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    host = host.rstrip("/")
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OpusConnectionConfigError(
            f"Opus connection {conn.conn_id!r}: host {conn.host!r} is not an http(s) URL. "
            f"Set it to the API base URL, e.g. {DEFAULT_BASE_URL}, or leave it empty for that default."
        )
    if conn.port and parts.port is None:
        host = f"{host}:{conn.port}"
    return host
