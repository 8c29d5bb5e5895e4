"""
What both listeners share: the emulator's error answers and :class:`EmulatorMiddleware`.

The middleware logs every request, applies injected faults and, on the API listener, checks the
``x-service-key`` header.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_opus.emulator.errors import EmulatorError, InvalidBody
from airflow_provider_opus.emulator.faults import ENDPOINTS, Fault

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

    from airflow_provider_opus.emulator.state import EmulatorState

ConnectionCloser = Callable[[Scope], None]
"""Closes the TCP connection that carries the request in the given scope."""

ADMIN_PREFIX = "/_emulator"
ADMIN_ENDPOINT = "admin"
#: Where the workflow pages are (``/app/workflow/{id}``), and their endpoint name in the request log.
PAGE_PREFIX = "/app"
PAGE_ENDPOINT = "app_page"
_DISCONNECT_TIMEOUT = 5.0
UNAUTHORIZED = JSONResponse({"message": "Invalid or missing x-service-key"}, status_code=401)


def wrap_listener(
    app: ASGIApp,
    listener: Literal["api", "storage"],
    state: EmulatorState,
    close_connection: ConnectionCloser | None,
    routes: list[BaseRoute],
) -> ASGIApp:
    """
    Give a listener's app the emulator's request log, fault injection and key check.

    :param routes: the routes whose names are the endpoint names of the requests.
    """
    middleware = EmulatorMiddleware(
        app, state=state, listener=listener, routes=routes, close_connection=close_connection
    )
    # As in a Starlette app: an exception (a drop fault outside the emulator's server) is a plain 500.
    return ServerErrorMiddleware(middleware)


def add_error_handlers(app: Starlette) -> None:
    """Answer the emulator's errors, and Starlette's, as ``{"message": ...}``."""
    app.add_exception_handler(EmulatorError, _emulator_error)
    app.add_exception_handler(HTTPException, _http_error)


async def _emulator_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EmulatorError)
    message = exc.messages if isinstance(exc, InvalidBody) else exc.message
    return JSONResponse({"message": message}, status_code=exc.status_code)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    """Report body validation errors the way the API reports its own: 400 with a message."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        if error["type"] == "json_invalid":
            problems.append("request body is not valid JSON")
            continue
        field = ".".join(str(part) for part in error["loc"] if part != "body") or "request body"
        problems.append(f"{field}: {error['msg']}")
    return JSONResponse({"message": "Invalid request: " + "; ".join(problems)}, status_code=400)


class EmulatorMiddleware:
    """
    Log every request, apply the next queued fault for its endpoint and enforce the service key.

    :param app: the app to wrap.
    :param state: where the log and the fault queues live.
    :param listener: "api" (needs ``x-service-key`` outside ``/_emulator/``) or "storage".
    :param routes: the wrapped app's routes; a request's endpoint name is the name of the route it matches.
    :param close_connection: see :func:`create_api_app`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: EmulatorState,
        listener: Literal["api", "storage"],
        routes: list[BaseRoute],
        close_connection: ConnectionCloser | None,
    ) -> None:
        self.app = app
        self.state = state
        self.listener = listener
        self.routes = routes
        self.close_connection = close_connection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = self._endpoint(scope)
        service_key = header(scope, b"x-service-key")
        client = scope.get("client")
        entry = self.state.log_request(
            self.listener,
            endpoint,
            scope["method"],
            scope["path"],
            service_key is not None,
            client_port=client[1] if client else None,
        )

        async def send_logged(message: Message) -> None:
            # Logged before the client can see the response, so a test reading the log never races it.
            if message["type"] == "http.response.start":
                self.state.update_request(entry, status=message["status"])
            await send(message)

        respond: Send = send_logged
        fault = self.state.take_fault(endpoint)
        if fault is not None:
            self.state.update_request(entry, fault=fault.spec)
            if fault.drop == "before":
                await asyncio.sleep(fault.delay)
                await self._drop_connection(scope, receive)
                return
            if fault.delay:
                respond = _delayed(send_logged, fault.delay)
            if fault.status is not None:
                await _drain(receive)
                await _fault_response(fault)(scope, receive, respond)
                return

        app = self.app
        # The admin routes and the workflow pages (opened in a browser) need no key.
        keyless = endpoint in (ADMIN_ENDPOINT, PAGE_ENDPOINT)
        if self.listener == "api" and not keyless and not self._authorized(service_key):
            await _drain(receive)
            app = UNAUTHORIZED
        if fault is not None and fault.drop == "after":
            await _send_truncated(app, scope, receive, respond)
            await self._drop_connection(scope, receive)
            return
        await app(scope, receive, respond)

    def _endpoint(self, scope: Scope) -> str | None:
        if self.listener == "api" and scope["path"].startswith(f"{ADMIN_PREFIX}/"):
            return ADMIN_ENDPOINT
        if self.listener == "api" and scope["path"].startswith(f"{PAGE_PREFIX}/"):
            return PAGE_ENDPOINT
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                name = getattr(route, "name", None)
                return name if name in ENDPOINTS else None
        return None

    def _authorized(self, service_key: bytes | None) -> bool:
        return is_service_key(self.state, service_key)

    async def _drop_connection(self, scope: Scope, receive: Receive) -> None:
        if self.close_connection is None:
            raise ConnectionAbortedError("injected drop fault")
        self.close_connection(scope)
        # Returning before the server has seen the disconnect would make it log an incomplete response
        # (or send a 500), so wait for it.
        await asyncio.wait_for(_until_disconnected(receive), _DISCONNECT_TIMEOUT)


def is_service_key(state: EmulatorState, service_key: bytes | None) -> bool:
    """Tell whether an ``x-service-key`` header value is the emulator's key."""
    return service_key is not None and secrets.compare_digest(service_key, state.service_key.encode())


def _delayed(send: Send, delay: float) -> Send:
    """
    Hold the response back by ``delay`` seconds.

    The request itself is handled at once, while the client is surely still connected: a client that
    gives up during the delay still gets its job created (or its upload recorded), as with a slow server.
    """

    async def send_later(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(delay)
        await send(message)

    return send_later


def _fault_response(fault: Fault) -> Response:
    assert fault.status is not None
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
    return Response(fault.body, status_code=fault.status, headers=headers, media_type=fault.media_type)


class _ResponseCut(Exception):
    """Raised into the app once a truncated response has sent all it will: the rest need not be made."""


async def _send_truncated(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """
    Handle the request normally, then send its status line and headers but only half of its body.

    The body passes through as the app makes it, so a large streamed file is cut without being held in memory;
    a response without a ``Content-Length`` is collected first to find its half.
    """
    start: Message = {}
    chunks: list[bytes] = []
    # Body bytes still to send, once the length is known.
    budget: list[int] = []

    async def cut(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            length = _content_length(message["headers"])
            if length is not None:
                budget.append(length // 2)
                await send(_announcing(start, length))
            return
        if message["type"] != "http.response.body":
            return
        body = message.get("body", b"")
        if not budget:
            chunks.append(body)
            return
        part = body[: budget[0]]
        budget[0] -= len(part)
        if part or budget[0] == 0:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        if budget[0] == 0:
            raise _ResponseCut

    try:
        await app(scope, receive, cut)
    except _ResponseCut:
        return
    if budget:  # the app ended (an empty body) before its half was reached
        return
    body = b"".join(chunks)
    await send(_announcing(start, len(body)))
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})


def _announcing(start: Message, length: int) -> Message:
    """Return a response start that announces one byte more than ``length``, so even an empty body is cut short."""
    headers = [(name, value) for name, value in start["headers"] if name.lower() != b"content-length"]
    headers.append((b"content-length", str(length + 1).encode()))
    return {"type": "http.response.start", "status": start["status"], "headers": headers}


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value)
    return None


def header(scope: Scope, name: bytes) -> bytes | None:
    """Return a request header's value as sent, or None."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _drain(receive: Receive) -> None:
    """Consume the request body, so a client still sending it gets our response instead of a reset."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
