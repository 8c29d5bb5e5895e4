"""
The emulator's two listeners (API and storage): two uvicorn servers on one event loop in a background thread.

:class:`Listeners` is the base of :class:`~airflow_provider_opus.emulator.server.OpusEmulator`: starting,
stopping and the URLs. The same event loop runs the sender of job callbacks.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import TYPE_CHECKING, TypeVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from airflow_provider_opus.emulator.app import create_api_app, create_storage_app
from airflow_provider_opus.emulator.callbacks import run_callbacks

if TYPE_CHECKING:
    from types import TracebackType

    from starlette.types import ASGIApp, Scope

    from airflow_provider_opus.emulator.state import EmulatorState

_START_TIMEOUT = 10.0
# How long stop() lets in-flight requests (an injected delay, say) finish before cancelling them.
_SHUTDOWN_GRACE = 3
ListenersT = TypeVar("ListenersT", bound="Listeners")


class Listeners:
    """
    Serve an emulator state on two loopback (or given) ports, API and storage, over HTTP or HTTPS.

    :param state: the state to serve.
    :param host: interface both listeners bind to.
    :param ports: the API and storage ports; 0 picks a free one.
    :param tls: ``(certfile, keyfile)`` to serve HTTPS with; None for plain HTTP.
    """

    def __init__(self, state: EmulatorState, host: str, ports: tuple[int, int], tls: tuple[str, str] | None) -> None:
        self.state = state
        self._host = host
        self._tls = tls
        self._ports = ports
        self._thread: threading.Thread | None = None
        self._servers: list[uvicorn.Server] = []
        self._sockets: list[socket.socket] = []
        self._urls: tuple[str, str] | None = None
        self._error: BaseException | None = None

    def start(self: ListenersT) -> ListenersT:
        """
        Bind both listeners and serve them in a background thread.

        :return: self, once both listeners accept connections.
        :raises RuntimeError: if already running or the servers fail to start.
        :raises OSError: if a port cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("OpusEmulator is already running")
        # Binding here, not in uvicorn, makes the ports known (and bind errors raised) before start returns.
        self._sockets = []
        try:
            for port in self._ports:
                self._sockets.append(_bind(self._host, port))
        except OSError:
            for sock in self._sockets:
                sock.close()
            raise
        scheme = "https" if self._tls else "http"
        api_url, storage_url = (_url(self._host, sock, scheme) for sock in self._sockets)
        self.state.storage_url = storage_url
        apps: list[ASGIApp] = [
            create_api_app(self.state, close_connection=self._close_connection),
            create_storage_app(self.state, close_connection=self._close_connection),
        ]
        self._servers = [uvicorn.Server(_config(app, self._tls)) for app in apps]
        self._error = None
        self._thread = threading.Thread(target=self._run, name="opus-emulator", daemon=True)
        self._thread.start()

        deadline = time.monotonic() + _START_TIMEOUT
        while not all(server.started for server in self._servers):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                error = self._error
                self.stop()
                raise RuntimeError(f"Opus emulator failed to start: {error!r}") from error
            time.sleep(0.005)
        self._urls = (api_url, storage_url)
        return self

    def stop(self) -> None:
        """Shut both listeners down and wait for the thread to end. Does nothing if not running."""
        thread = self._thread
        if thread is None:
            return
        for server in self._servers:
            server.should_exit = True
        thread.join(_SHUTDOWN_GRACE + 5)
        if thread.is_alive():
            for server in self._servers:
                server.force_exit = True
            thread.join(5)
        for sock in self._sockets:
            sock.close()
        self._thread, self._servers, self._sockets, self._urls = None, [], [], None

    def __enter__(self: ListenersT) -> ListenersT:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the emulator is serving."""
        return self._urls is not None

    @property
    def url(self) -> str:
        """API base URL, e.g. ``http://127.0.0.1:8765`` (``https://`` when serving TLS)."""
        return self._running_urls()[0]

    @property
    def storage_url(self) -> str:
        """Base URL of the storage listener that presigned upload URLs and output files point to."""
        return self._running_urls()[1]

    # Internals ----------------------------------------------------------------------------------------

    def _running_urls(self) -> tuple[str, str]:
        if self._urls is None:
            raise RuntimeError("OpusEmulator is not running; call start() first")
        return self._urls

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # SystemExit included: uvicorn exits that way on startup failure.
            self._error = exc

    async def _serve(self) -> None:
        """Serve both listeners, and send job callbacks, until the servers exit."""
        stop = asyncio.Event()
        callbacks = asyncio.create_task(run_callbacks(self.state, stop))
        try:
            await asyncio.gather(
                *(server.serve(sockets=[sock]) for server, sock in zip(self._servers, self._sockets, strict=True))
            )
        finally:
            stop.set()
            await callbacks

    def _close_connection(self, scope: Scope) -> None:
        peer = (scope.get("client"), scope.get("server"))
        for server in self._servers:
            for protocol in list(server.server_state.connections):
                # H11Protocol because _config() asks for it; other protocols keep their peers elsewhere.
                if isinstance(protocol, H11Protocol) and (protocol.client, protocol.server) == peer:
                    protocol.transport.close()


def _config(app: ASGIApp, tls: tuple[str, str] | None = None) -> uvicorn.Config:
    certfile, keyfile = tls or (None, None)
    return uvicorn.Config(
        app,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,  # leave the host process's logging configuration alone
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=_SHUTDOWN_GRACE,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and without it
    # every response waits ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Lets a restarted CLI emulator reuse its fixed port while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, sock: socket.socket, scheme: str = "http") -> str:
    port = sock.getsockname()[1]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
