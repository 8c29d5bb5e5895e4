"""The Airflow connection of type ``opus``: what the hooks need from it, read and checked in one place.

That includes the network the calls take, the same for the blocking hook, the async hook (so
every deferred wait) and the presigned upload:

* **Proxy.** The connection's ``proxy_url``, when set, carries every request (API and storage).
  Otherwise ``HTTPS_PROXY`` and ``HTTP_PROXY`` of the environment apply by the URL's scheme,
  except to hosts that ``NO_PROXY`` lists (read as requests and curl read them: lower-case
  names first). :meth:`OpusConnectionSettings.proxy_for` is that rule, used by both hooks.
  Credentials in a proxy URL belong to the proxy and go to it only; nothing else is taken from
  the environment (no ``~/.netrc``, no ``REQUESTS_CA_BUNDLE``).
* **TLS.** Certificates are checked against the connection's ``ca_bundle`` when set, else
  against certifi's public CAs (what ``requests`` uses); ``verify_tls`` false turns checking off,
  with a warning each time a hook reads the connection (:attr:`OpusConnectionSettings.tls_verify`).
"""

from __future__ import annotations

import contextlib
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
from airflow_provider_opus.urls import checked_callback_url, checked_url, origin_of, reads_alike, redacted_url

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Connection

#: Seconds one HTTP call may take, answer included, unless the connection sets ``timeout``.
DEFAULT_CALL_TIMEOUT = 30.0
#: The longest ``timeout`` a connection may set (one hour): no answer of Opus takes longer, and
#: an infinite or huge one would overflow the libraries' clocks.
MAX_TIMEOUT = 3600.0
#: Connecting is quick or not happening: a short connect timeout finds a dead host fast.
MAX_CONNECT_TIMEOUT = 10.0
#: The largest file Opus takes in an upload (10 MB, read as MiB), the default of ``max_upload_bytes``.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: The largest output file downloaded (1 GiB), the default of ``max_download_bytes``.
DEFAULT_MAX_DOWNLOAD_BYTES = 1024**3
USER_AGENT = f"airflow-provider-opus/{__version__}"
#: The environment variables whose proxy applies to a URL of each scheme when the connection
#: sets no ``proxy_url`` (either case; the lower-case one wins, as in requests and curl).
PROXY_VARIABLES = {"https": "HTTPS_PROXY", "http": "HTTP_PROXY"}
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpusConnectionSettings:
    """
    What the hooks need from an Airflow connection of type ``opus``, checked once.

    :param conn_id: the connection id (for error messages).
    :param base_url: API base URL without a trailing slash.
    :param service_key: the ``x-service-key``; never printed (excluded from ``repr``).
    :param timeout: seconds a whole call may take (connect, send, the whole answer).
    :param app_url: base URL of the Opus web app, for links.
    :param proxy_url: the connection's proxy for every request; it may hold the proxy's
        credentials, so it is never printed (excluded from ``repr``).
    :param ca_bundle: a PEM file of the CAs to trust instead of certifi's public ones.
    :param verify_tls: check the servers' certificates (False only for tests and emergencies).
    :param environment_proxies: ``(scheme, proxy URL)`` pairs read from ``HTTPS_PROXY`` and
        ``HTTP_PROXY`` when there is no ``proxy_url``; never printed either.
    :param no_proxy: the hosts ``NO_PROXY`` exempts from the environment's proxies.
    :param file_hosts: origins (``https://files.opus.com:443``) besides the API's that may receive the
        service key when output files are downloaded from them.
    :param callback_url: the URL Opus POSTs a job's result to when it ends (``callbackUrl`` of
        ``POST /job/execute``), or None to send none; see :func:`checked_callback_url`.
    :param max_upload_bytes: the largest local file an upload may send; larger ones fail before any call.
    :param max_download_bytes: the largest output file a download writes, as stored (never decompressed).
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
    # May carry the receiver's own token: never printed.
    callback_url: str | None = field(default=None, repr=False)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES

    @property
    def connect_timeout(self) -> float:
        """Seconds to wait for a TCP connection."""
        return min(MAX_CONNECT_TIMEOUT, self.timeout)

    @property
    def api_headers(self) -> dict[str, str]:
        """The headers of every API request; they carry the service key, so send them to ``base_url`` only."""
        return {SERVICE_KEY_HEADER: self.service_key, "Accept": "application/json", "User-Agent": USER_AGENT}

    @property
    def tls_verify(self) -> bool | str:
        """How to check certificates, in ``requests``' terms: False, the CA bundle's path, or True (certifi)."""
        if not self.verify_tls:
            return False
        return self.ca_bundle or True

    def proxy_for(self, url: str) -> str | None:
        """
        Return the proxy URL a request to ``url`` goes through, or None to connect directly.

        The one proxy rule of both hooks and the presigned upload (see the module's docstring).

        :param url: the whole URL of the request.
        """
        if self.proxy_url:
            return self.proxy_url
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if _bypasses_proxy(parts.hostname or "", port, self.no_proxy):
            return None
        return dict(self.environment_proxies).get(parts.scheme)

    def may_send_key_to(self, url: str) -> bool:
        """
        Tell whether a download from ``url`` may carry the service key: the API's origin or a ``file_hosts`` one.

        Never for a URL that :func:`checked_url` refuses: its host is not surely the one connected to.

        :param url: the whole URL of the file.
        """
        try:
            checked_url(url, "url")
        except OpusInvalidArgumentError:
            return False
        return origin_of(url) in (origin_of(self.base_url), *self.file_hosts)

    @classmethod
    def from_connection(cls, conn: Connection, timeout: float | None = None) -> OpusConnectionSettings:
        """
        Read and check a connection.

        :param conn: the Airflow connection.
        :param timeout: a timeout that overrides the connection's ``timeout`` field.
        :raises OpusConnectionConfigError: no key, a bad URL, timeout, proxy URL (the connection's or the
            environment's), CA bundle or ``verify_tls``; the message names the field and says the fix.
        """
        conn_id = conn.conn_id
        service_key = _service_key(conn)
        extra = conn.extra_dejson or {}
        base_url = _base_url(conn)
        chosen_timeout = timeout if timeout is not None else _extra_field(extra, "timeout")
        try:
            timeout_seconds = float(chosen_timeout) if chosen_timeout not in (None, "") else DEFAULT_CALL_TIMEOUT
        except (TypeError, ValueError):
            timeout_seconds = -1.0
        if not 0 < timeout_seconds <= MAX_TIMEOUT:  # also false for nan
            raise OpusConnectionConfigError(
                f"Opus connection {conn_id!r}: timeout must be a positive number of seconds up to "
                f"{MAX_TIMEOUT:g} (one hour), got {chosen_timeout!r}."
            )
        app_url = str(_extra_field(extra, "app_url") or DEFAULT_APP_URL).rstrip("/")
        proxy_value = _extra_field(extra, "proxy_url")
        blank = proxy_value is None or (isinstance(proxy_value, str) and not proxy_value.strip())
        proxy_url = None if blank else _proxy_url(proxy_value, "proxy_url", conn_id)
        environment_proxies, no_proxy = ((), ()) if proxy_url else _environment_proxies(conn_id)
        ca_bundle = _ca_bundle(_extra_field(extra, "ca_bundle"), conn_id)
        verify_tls = _flag(_extra_field(extra, "verify_tls"), "verify_tls", conn_id, default=True)
        file_hosts = _file_hosts(_extra_field(extra, "file_hosts"), conn_id)
        where = f"Opus connection {conn_id!r}"
        try:
            callback_url = checked_callback_url(_extra_field(extra, "callback_url"), f"{where}: callback_url")
        except OpusInvalidArgumentError as exc:
            raise OpusConnectionConfigError(str(exc)) from None
        max_upload_bytes = _byte_limit(extra, "max_upload_bytes", DEFAULT_MAX_UPLOAD_BYTES, "limit of Opus", conn_id)
        max_download_bytes = _byte_limit(extra, "max_download_bytes", DEFAULT_MAX_DOWNLOAD_BYTES, "default", conn_id)
        if not verify_tls:
            log.warning(
                "Opus connection %r has verify_tls off: the certificates of the Opus API and the storage are not "
                "checked, so anyone on the network path can read the service key and the files. Set ca_bundle to "
                "your CA's PEM file instead.",
                conn_id,
            )
        return cls(
            conn_id,
            base_url,
            service_key,
            timeout_seconds,
            app_url,
            proxy_url=proxy_url,
            ca_bundle=ca_bundle,
            verify_tls=verify_tls,
            environment_proxies=environment_proxies,
            no_proxy=no_proxy,
            file_hosts=file_hosts,
            callback_url=callback_url,
            max_upload_bytes=max_upload_bytes,
            max_download_bytes=max_download_bytes,
        )


def _byte_limit(extra: Mapping[str, Any], name: str, default: int, meaning: str, conn_id: str) -> int:
    """Read a size limit (``max_upload_bytes``, ``max_download_bytes``): bytes above zero; empty is ``default``."""
    value = _extra_field(extra, name)
    if value is None or value == "":
        return default
    number = value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
        raise OpusConnectionConfigError(
            f"Opus connection {conn_id!r}: {name} must be a whole number of bytes above 0, got "
            f"{value!r}; leave it empty for the {meaning} of {default} bytes."
        )
    return number


def _file_hosts(value: Any, conn_id: str) -> tuple[str, ...]:
    """Read ``file_hosts``: hosts (``files.opus.com``, meaning https) or origins, comma-separated or a list."""
    entries = value.replace(",", " ").split() if isinstance(value, str) else value
    if entries is None:
        return ()
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        entries = [None]
    origins = []
    for entry in entries:
        url = entry if entry is None or "://" in entry else f"https://{entry}"
        url = url or ""
        # _reads_alike refuses credentials, spaces and hosts the parsers read differently; "*" is refused here.
        if "*" in url or urlsplit(url).path not in ("", "/") or not reads_alike(url):
            # No wildcards: "*.opus.com" was taken and matched no host; each host is listed as itself.
            raise OpusConnectionConfigError(
                f"Opus connection {conn_id!r}: file_hosts must list hosts such as files.opus.com (https) or "
                f"origins such as http://files.internal:8080, separated by commas, each host in full (no "
                f"wildcards, no credentials); got {entry!r}."
            )
        origins.append(origin_of(url))
    return tuple(origins)


def _service_key(conn: Connection) -> str:
    # A key pasted, or read from a file, often comes with a line break or spaces around it.
    service_key = (conn.password or "").strip()
    if not service_key:
        raise OpusConnectionConfigError(
            f"Opus connection {conn.conn_id!r} has no service key: set its password (shown as "
            "'Service key') to an API key from Opus (My Organization > API Keys)."
        )
    register_secret(service_key)  # before any other field is checked: a message may quote the key typed there
    bad = next((index for index, char in enumerate(service_key) if not " " <= char <= "~"), None)
    if bad is not None:
        # Never the key itself, nor the character: only where it is.
        raise OpusConnectionConfigError(
            f"Opus connection {conn.conn_id!r}: the service key has a control or non-ASCII character at "
            f"position {bad + 1} of {len(service_key)}, which cannot be sent in a header: paste the key "
            "again as Opus showed it."
        )
    return service_key


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
    # Credentials before the host are the user's own here (sent to it by design, never shown); the parsers
    # must still agree on the host, which gets the key on every call, for requests and aiohttp alike.
    if parts.scheme not in ("http", "https") or not parts.hostname or not reads_alike(host, credentials=True):
        raise OpusConnectionConfigError(
            f"Opus connection {conn.conn_id!r}: host {conn.host!r} is not an http(s) URL. "
            f"Set it to the API base URL, e.g. {DEFAULT_BASE_URL}, or leave it empty for that default."
        )
    if conn.port and parts.port is None:
        host = f"{host}:{conn.port}"
    return host


def _proxy_url(value: Any, name: str, conn_id: str) -> str:
    """Check a proxy URL from the connection or the environment; ``name`` says which, for the message."""
    text = value.strip() if isinstance(value, str) else ""
    if text and "://" not in text:
        text = "http://" + text  # "proxy:3128", as requests and curl take it
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, or out of range
        port_ok = False
    printable = all("!" <= char <= "~" for char in text)
    if (
        not printable
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or not port_ok
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        shown = redacted_url(text) if isinstance(value, str) else value  # repr shows a space or control char
        fix = (
            "or leave it empty to use HTTPS_PROXY and HTTP_PROXY from the environment"
            if name == "proxy_url"
            else "or unset it, or set the connection's proxy_url (which the environment does not override)"
        )
        raise OpusConnectionConfigError(
            f"Opus connection {conn_id!r}: {name} {shown!r} is not an http(s) proxy URL. Set it to one like "
            f"http://proxy.example.com:3128 (with user:password@ before the host if the proxy asks for them), {fix}."
        )
    return text.rstrip("/")


def _environment_proxies(conn_id: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Read ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY`` the way requests and curl read them."""
    found = urllib.request.getproxies_environment()  # lower-case names win; HTTP_PROXY is ignored under CGI
    proxies = tuple(
        (scheme, _proxy_url(found[scheme], f"{variable} in the environment", conn_id))
        for scheme, variable in PROXY_VARIABLES.items()
        if found.get(scheme)
    )
    no_proxy = tuple(
        entry.strip().lower() for entry in found.get("no", "").replace(" ", ",").split(",") if entry.strip()
    )
    return proxies, no_proxy


def _bypasses_proxy(host: str, port: int, no_proxy: tuple[str, ...]) -> bool:
    """
    Tell whether ``NO_PROXY`` exempts a host from the proxy.

    By urllib's rule (a name matches itself and its subdomains, with or without a leading dot;
    ``name:port`` matches that port only), and, as curl reads them too, ``*`` alone, ``*.`` before
    a name, and IP addresses and networks (``10.0.0.0/8``, ``fd00::/8``), which urllib does not.
    """
    if "*" in no_proxy:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy if address is not None else ():
        with contextlib.suppress(ValueError):  # not an address or network
            if address in ipaddress.ip_network(entry, strict=False):
                return True
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    names = ",".join(entry.removeprefix("*.") for entry in no_proxy)
    # Missing from typeshed (python/cpython#145331); requests imports it the same way.
    return urllib.request.proxy_bypass_environment(netloc, {"no": names})  # type: ignore[attr-defined]


def _flag(value: Any, name: str, conn_id: str, *, default: bool) -> bool:
    """Read a yes-or-no field: JSON gives a bool, the URI form and the UI may give a word."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise OpusConnectionConfigError(f"Opus connection {conn_id!r}: {name} must be true or false, got {value!r}.")


def _ca_bundle(value: Any, conn_id: str) -> str | None:
    """Check that the CA bundle is a readable file of PEM certificates, so a typo fails before any call."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    fix = "Set it to the path of a PEM file with your CA's certificates, present on every worker and the triggerer."
    if not isinstance(value, str):
        raise OpusConnectionConfigError(
            f"Opus connection {conn_id!r}: ca_bundle must be a file path, got {value!r}. {fix}"
        )
    path = os.path.expanduser(value.strip())
    problem = ""
    if os.path.isdir(path):
        problem = "is a directory"
    elif not os.path.exists(path):
        problem = "does not exist"
    else:
        try:
            verifying_context(path)
        except ssl.SSLError as exc:  # before OSError, of which it is one
            problem = f"holds no PEM certificate that loads ({exc.reason or exc})"
        except OSError as exc:
            problem = f"cannot be read ({exc.strerror or type(exc).__name__})"
    if problem:
        raise OpusConnectionConfigError(f"Opus connection {conn_id!r}: ca_bundle {path!r} {problem}. {fix}")
    return path


def verifying_context(cafile: str) -> ssl.SSLContext:
    """
    Return an SSL context that checks certificates against the CAs in ``cafile``.

    Loading a bundle takes tens of milliseconds (for the async hook, of the triggerer's event
    loop), so each version of a file (its path, modification time and size) is loaded once per
    process: hooks and sessions reuse it, and a replaced file is loaded anew.

    :param cafile: a PEM file of CA certificates.
    :raises OSError: the file cannot be read; :class:`ssl.SSLError` (an ``OSError``) if it holds
        no certificate that loads.
    """
    stat = os.stat(cafile)
    return _verifying_context(cafile, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _verifying_context(cafile: str, mtime_ns: int, size: int) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)
