"""A forward HTTP proxy on loopback, as companies run them: CONNECT tunnels for https, absolute URLs for http."""

from __future__ import annotations

import base64
import contextlib
import selectors
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

#: How long a connection through the proxy may stay silent before the proxy drops it.
_IDLE_TIMEOUT = 10.0
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Forwarded:
    """
    One request the proxy forwarded (or refused).

    :param method: ``CONNECT`` for a tunnel, else the HTTP method of a plain-http request.
    :param target: ``host:port`` of a tunnel, or the absolute URL of a plain-http request.
    :param headers: the request's headers as the proxy got them, names in lower case.
    :param refused: the proxy answered 407 (missing or wrong credentials) and forwarded nothing.
    """

    method: str
    target: str
    headers: dict[str, str]
    refused: bool = False


class ForwardProxy:
    """
    A forward proxy on ``127.0.0.1`` that records what it forwards; use it as a context manager.

    A ``CONNECT host:port`` opens a tunnel (the proxy sees the target, never what passes inside);
    a request with an absolute URL (plain http) is forwarded to its host with the proxy's own
    headers removed and ``Connection: close``. Each connection is served by a thread that ends
    when either side closes, after :data:`_IDLE_TIMEOUT` seconds of silence, or when the proxy stops.

    :param credentials: ``user:password`` the proxy demands in ``Proxy-Authorization``: without
        them a request gets ``407`` and nothing is forwarded. None lets everyone through.
    :param after_forwarding: what a failing hop does once the server has answered: ``"drop"`` closes
        the client's connection (tunnel) without relaying the answer; an HTTP status (502, 503, 504)
        answers with it instead, as a gateway (Envoy, Istio) does after an upstream reset. None relays.
    :param acted: tells whether the server has acted on the request; until it says so, what the
        server sends is relayed (a tunnel's TLS handshake). None: fail at the server's first bytes.
    """

    def __init__(
        self,
        credentials: str | None = None,
        after_forwarding: str | int | None = None,
        acted: Callable[[], bool] | None = None,
    ) -> None:
        self.credentials = credentials
        self.after_forwarding = after_forwarding
        self.acted = acted
        self.forwarded: list[Forwarded] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.url = f"http://{self.address}"
        self._threads = [threading.Thread(target=self._accept, name="test-proxy", daemon=True)]

    def url_with_credentials(self) -> str:
        """Return the proxy URL with this proxy's credentials in it, as a user would configure it."""
        return f"http://{self.credentials}@{self.address}"

    def __enter__(self) -> ForwardProxy:
        self._threads[0].start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that a close alone leaves blocked
        self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    @property
    def targets(self) -> list[str]:
        """The targets of the requests forwarded (not the refused ones), oldest first."""
        with self._lock:
            return [request.target for request in self.forwarded if not request.refused]

    def _record(self, request: Forwarded) -> None:
        with self._lock:
            self.forwarded.append(request)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(_IDLE_TIMEOUT)
            try:
                head, rest = _read_head(client)
            except OSError:
                return
            if head is None:
                return
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _version = request_line.split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, value in (line.split(":", 1) for line in header_lines if ":" in line)
            }
            if self.credentials is not None and headers.get("proxy-authorization") != _basic(self.credentials):
                self._record(Forwarded(method, target, headers, refused=True))
                client.sendall(
                    b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            self._record(Forwarded(method, target, headers))
            upstream = self._open_upstream(client, method, target, header_lines, rest)
            if upstream is not None:
                with upstream:
                    self._pipe(client, upstream)

    def _open_upstream(
        self, client: socket.socket, method: str, target: str, header_lines: list[str], rest: bytes
    ) -> socket.socket | None:
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            address = (host.strip("[]"), int(port))
        else:
            parts = urlsplit(target)
            address = (parts.hostname or "", parts.port or 80)
        try:
            upstream = socket.create_connection(address, timeout=_IDLE_TIMEOUT)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return None
        if method == "CONNECT":
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            upstream.sendall(rest)
            return upstream
        parts = urlsplit(target)
        origin_form = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [
            line
            for line in header_lines
            if line.split(":", 1)[0].strip().lower() not in ("proxy-authorization", "proxy-connection", "connection")
        ]
        head = "\r\n".join([f"{method} {origin_form} HTTP/1.1", *kept, "Connection: close", "", ""])
        upstream.sendall(head.encode("latin-1") + rest)
        return upstream

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            idle = 0.0
            while not self._stop.is_set() and idle < _IDLE_TIMEOUT:
                ready = selector.select(timeout=0.1)
                idle = idle + 0.1 if not ready else 0.0
                for key, _ in ready:
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(65536)
                        if not data:
                            return
                        failing = self.after_forwarding is not None and (self.acted is None or self.acted())
                        if sock is upstream and failing:
                            self._fail_after_forwarding(client)  # the server acted; the client never hears
                            return
                        peers[sock].setblocking(True)
                        peers[sock].sendall(data)
                        peers[sock].setblocking(False)
                    except OSError:
                        return

    def _fail_after_forwarding(self, client: socket.socket) -> None:
        if self.after_forwarding == "drop":
            return
        client.setblocking(True)
        body = b"upstream connect error or disconnect/reset before headers. reset reason: connection termination"
        head = f"HTTP/1.1 {self.after_forwarding} Gateway Error\r\nContent-Length: {len(body)}\r\n"
        head += "Connection: close\r\n\r\n"
        client.sendall(head.encode() + body)


def _read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > _MAX_HEAD:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()
