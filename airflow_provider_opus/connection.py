"""The Airflow connection of type ``opus``, read and checked once: :class:`OpusConnectionSettings`.

Its proxy (:meth:`~OpusConnectionSettings.proxy_for`) and CAs (:attr:`~OpusConnectionSettings.tls_verify`) apply
alike to both hooks and the presigned upload; nothing else comes from the environment (see the connection docs).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import logging
import os
import ssl
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_opus import __version__
from airflow_provider_opus.api import DEFAULT_APP_URL, DEFAULT_BASE_URL, SERVICE_KEY_HEADER
from airflow_provider_opus.exceptions import OpusConnectionConfigError, OpusInvalidArgumentError, register_secret
from airflow_provider_opus.urls import checked_callback_url, origin_of, reads_alike, redacted_url

if TYPE_CHECKING:
    from airflow.sdk import Connection

#: Seconds one HTTP call may take, answer included, unless the connection sets ``timeout``.
DEFAULT_CALL_TIMEOUT = 30.0
#: The longest ``timeout`` (one hour): no answer of Opus takes longer, and a huge one overflows the libraries' clocks.
MAX_TIMEOUT = 3600.0
#: The largest file Opus takes in an upload (10 MB, read as MiB), the default of ``max_upload_bytes``.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: The largest output file downloaded (1 GiB), the default of ``max_download_bytes``.
DEFAULT_MAX_DOWNLOAD_BYTES = 1024**3
USER_AGENT = f"airflow-provider-opus/{__version__}"
_FLAGS = dict.fromkeys(("true", "yes", "on", "1"), True) | dict.fromkeys(("false", "no", "off", "0"), False)
_FILE_PROBLEMS = {errno.ENOENT: "does not exist", errno.ENOTDIR: "does not exist", errno.EISDIR: "is a directory"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpusConnectionSettings:
    """
    What the hooks need from an Airflow connection of type ``opus``, checked once.

    :param conn_id: the connection id, for messages.
    :param base_url: API base URL without a trailing slash.
    :param service_key: the ``x-service-key`` (never in ``repr``).
    :param timeout: seconds a whole call may take.
    :param app_url: base URL of the Opus web app, for links.
    :param proxy_url: the proxy of every request (never in ``repr``: it may hold credentials).
    :param ca_bundle: a PEM file of the CAs to trust instead of certifi's.
    :param verify_tls: check the servers' certificates.
    :param environment_proxies: ``(scheme, proxy URL)`` pairs from the environment (never in ``repr``).
    :param no_proxy: the ``NO_PROXY`` entries.
    :param file_hosts: origins besides the API's that may get the service key with a download.
    :param callback_url: where Opus POSTs a job's result (:func:`~airflow_provider_opus.urls.checked_callback_url`).
    :param max_upload_bytes: the largest local file an upload may send.
    :param max_download_bytes: the largest output file a download writes.
    """

    conn_id: str
    base_url: str
    service_key: str = field(repr=False)
    timeout: float = DEFAULT_CALL_TIMEOUT
    app_url: str = DEFAULT_APP_URL
    proxy_url: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    verify_tls: bool = True
    environment_proxies: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    no_proxy: tuple[str, ...] = ()
    file_hosts: tuple[str, ...] = ()
    callback_url: str | None = field(default=None, repr=False)  # may carry the receiver's token
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES

    @property
    def connect_timeout(self) -> float:
        """Seconds to wait for a TCP connection: at most 10, so that a dead host is found fast."""
        return min(10.0, self.timeout)

    @property
    def api_headers(self) -> dict[str, str]:
        """The headers of every API request; they carry the service key, so send them to ``base_url`` only."""
        return {SERVICE_KEY_HEADER: self.service_key, "Accept": "application/json", "User-Agent": USER_AGENT}

    @property
    def tls_verify(self) -> bool | str:
        """How to check certificates: False, the CA bundle's path, or True (certifi's CAs)."""
        return (self.ca_bundle or True) if self.verify_tls else False

    def proxy_for(self, url: str) -> str | None:
        """
        Return the proxy URL a request to ``url`` goes through, or None to connect directly (both hooks' one rule).

        :param url: the whole URL of the request.
        """
        if self.proxy_url:
            return self.proxy_url
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        # NO_PROXY by urllib's rule (a name, its subdomains, name:port), plus curl's "*", "*.name" and IP networks.
        names = ",".join(entry.removeprefix("*.") for entry in self.no_proxy)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # Missing from typeshed (python/cpython#145331); requests imports it the same way.
        if "*" in self.no_proxy or urllib.request.proxy_bypass_environment(netloc, {"no": names}):  # type: ignore[attr-defined]
            return None
        with contextlib.suppress(ValueError):  # a host name
            address = ipaddress.ip_address(host)
            for entry in self.no_proxy:
                with contextlib.suppress(ValueError):  # a name, not a network
                    if address in ipaddress.ip_network(entry, strict=False):
                        return None
        return dict(self.environment_proxies).get(parts.scheme)

    def may_send_key_to(self, url: str) -> bool:
        """
        Tell whether a download from ``url`` may carry the service key: the API's origin or a ``file_hosts`` one.

        :param url: the whole URL of the file; never one the HTTP parsers read differently.
        """
        return reads_alike(url) and origin_of(url) in (origin_of(self.base_url), *self.file_hosts)

    @classmethod
    def from_connection(cls, conn: Connection, timeout: float | None = None) -> OpusConnectionSettings:
        """
        Read and check a connection.

        :param conn: the Airflow connection.
        :param timeout: a timeout that overrides the connection's ``timeout`` field.
        :raises OpusConnectionConfigError: a field is missing or wrong; the message names it and says the fix.
        """
        conn_id, extra = conn.conn_id, conn.extra_dejson or {}
        service_key = _service_key(conn)  # first: a message may quote the key typed into another field

        def get(name: str) -> Any:
            # Airflow's connection form has stored custom fields both plain and prefixed; blank is unset.
            value = extra.get(name, extra.get(f"extra__opus__{name}"))
            return None if isinstance(value, str) and not value.strip() else value

        try:  # each check names its field; the connection is added here
            given, seconds = get("timeout") if timeout is None else timeout, -1.0
            with contextlib.suppress(TypeError, ValueError):  # not a number: refused below
                seconds = DEFAULT_CALL_TIMEOUT if given is None else float(given)
            if not 0 < seconds <= MAX_TIMEOUT:  # also false for nan
                raise OpusInvalidArgumentError(
                    f"timeout must be a positive number of seconds up to {MAX_TIMEOUT:g} (one hour), got {given!r}."
                )
            verify_tls = True if get("verify_tls") is None else _FLAGS.get(str(get("verify_tls")).strip().lower())
            if verify_tls is None:
                raise OpusInvalidArgumentError(f"verify_tls must be true or false, got {get('verify_tls')!r}.")
            proxy_url = None if get("proxy_url") is None else _proxy_url(get("proxy_url"), "proxy_url")
            found = {} if proxy_url else urllib.request.getproxies_environment()  # lower-case names win, as in curl
            settings = cls(
                conn_id,
                _base_url(conn),
                service_key,
                seconds,
                str(get("app_url") or DEFAULT_APP_URL).rstrip("/"),
                proxy_url=proxy_url,
                ca_bundle=_ca_bundle(get("ca_bundle")),
                verify_tls=verify_tls,
                environment_proxies=tuple(
                    (scheme, _proxy_url(found[scheme], f"{scheme.upper()}_PROXY in the environment"))
                    for scheme in ("https", "http")
                    if found.get(scheme)
                ),
                no_proxy=tuple(entry.lower() for entry in found.get("no", "").replace(",", " ").split()),
                file_hosts=_file_hosts(get("file_hosts")),
                callback_url=checked_callback_url(get("callback_url"), "callback_url"),
                max_upload_bytes=_byte_limit(get("max_upload_bytes"), "max_upload_bytes"),
                max_download_bytes=_byte_limit(get("max_download_bytes"), "max_download_bytes"),
            )
        except OpusInvalidArgumentError as exc:
            raise OpusConnectionConfigError(f"Opus connection {conn_id!r}: {exc}") from None
        if not verify_tls:
            log.warning(
                "Opus connection %r has verify_tls off: the certificates of the Opus API and the storage are not "
                "checked, so anyone on the network path can read the service key and the files. Set ca_bundle to "
                "your CA's PEM file instead.",
                conn_id,
            )
        return settings


def _service_key(conn: Connection) -> str:
    service_key = (conn.password or "").strip()  # a pasted key often comes with a line break or spaces
    if not service_key:
        raise OpusConnectionConfigError(
            f"Opus connection {conn.conn_id!r} has no service key: set its password (shown as "
            "'Service key') to an API key from Opus (My Organization > API Keys)."
        )
    register_secret(service_key)
    bad = next((index for index, char in enumerate(service_key) if not " " <= char <= "~"), None)
    if bad is not None:  # never the key itself, nor the character: only where it is
        raise OpusConnectionConfigError(
            f"Opus connection {conn.conn_id!r}: the service key has a control or non-ASCII character at position "
            f"{bad + 1} of {len(service_key)}, which cannot be sent in a header: paste the key again as Opus showed it."
        )
    return service_key


def _base_url(conn: Connection) -> str:
    host = (conn.host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        host = f"{conn.schema if conn.schema in ('http', 'https') else 'https'}://{host}"
    host = host.rstrip("/")
    # Credentials before the host are the user's own (sent to it by design); the parsers must agree on the host.
    if not reads_alike(host, credentials=True):
        raise OpusInvalidArgumentError(
            f"host {conn.host!r} is not an http(s) URL. Set it to the API base URL, e.g. {DEFAULT_BASE_URL}, "
            "or leave it empty for that default."
        )
    return f"{host}:{conn.port}" if conn.port and urlsplit(host).port is None else host


def _proxy_url(value: Any, name: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if text and "://" not in text:
        text = "http://" + text  # "proxy:3128", as requests and curl take it
    if reads_alike(text, credentials=True) and urlsplit(text)[2:] in (("", "", ""), ("/", "", "")):
        return text.rstrip("/")
    fix = (
        "leave it empty to use HTTPS_PROXY and HTTP_PROXY from the environment"
        if name == "proxy_url"
        else "unset it, or set the connection's proxy_url (which the environment does not override)"
    )
    raise OpusInvalidArgumentError(
        f"{name} {redacted_url(text) if text else value!r} is not an http(s) proxy URL. Set it to one like "
        f"http://proxy.example.com:3128 (with user:password@ before the host if the proxy asks for them), or {fix}."
    )


def _ca_bundle(value: Any) -> str | None:
    if value is None:
        return None
    path = os.path.expanduser(value.strip()) if isinstance(value, str) else value
    problem = "must be a file path"
    if isinstance(path, str):
        try:
            verifying_context(path)  # a typo or a wrong file fails now, not at the first call
            return path
        except ssl.SSLError as exc:  # before OSError, of which it is one
            problem = f"holds no PEM certificate that loads ({exc.reason or exc})"
        except OSError as exc:
            problem = _FILE_PROBLEMS.get(exc.errno or 0, f"cannot be read ({exc.strerror or type(exc).__name__})")
    raise OpusInvalidArgumentError(
        f"ca_bundle {path!r} {problem}. Set it to the path of a PEM file with your CA's certificates, present on "
        "every worker and the triggerer."
    )


def _file_hosts(value: Any) -> tuple[str, ...]:
    entries = value.replace(",", " ").split() if isinstance(value, str) else [] if value is None else value
    origins = []
    for entry in entries if isinstance(entries, list) else [entries]:
        url = entry if not isinstance(entry, str) or "://" in entry else f"https://{entry}"
        # No wildcards: "*.opus.com" was once taken and matched no host; each host is listed as itself.
        if not isinstance(url, str) or not reads_alike(url) or "*" in url or urlsplit(url).path not in ("", "/"):
            raise OpusInvalidArgumentError(
                "file_hosts must list hosts such as files.opus.com (https) or origins such as "
                "http://files.internal:8080, separated by commas, each host in full (no wildcards, no credentials); "
                f"got {entry!r}."
            )
        origins.append(origin_of(url))
    return tuple(origins)


def _byte_limit(value: Any, name: str) -> int:
    default = DEFAULT_MAX_UPLOAD_BYTES if name == "max_upload_bytes" else DEFAULT_MAX_DOWNLOAD_BYTES
    if value is None:
        return default
    with contextlib.suppress(TypeError, ValueError, OverflowError):  # not a number, or not a finite one
        if not isinstance(value, bool) and float(value).is_integer() and int(value) > 0:
            return int(value)
    raise OpusInvalidArgumentError(
        f"{name} must be a whole number of bytes above 0, got {value!r}; leave it empty for the default of "
        f"{default} bytes."
    )


def verifying_context(cafile: str) -> ssl.SSLContext:
    """
    Return an SSL context trusting the CAs in ``cafile``, loaded once per version of the file (it takes tens of ms).

    :param cafile: a PEM file of CA certificates.
    :raises OSError: the file cannot be read, or (:class:`ssl.SSLError`) holds no certificate that loads.
    """
    stat = os.stat(cafile)
    return _verifying_context(cafile, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _verifying_context(cafile: str, mtime_ns: int, size: int) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)
