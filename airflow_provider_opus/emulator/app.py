"""
ASGI apps for the emulator's two listeners: the Opus API, and storage (presigned uploads, output files).

Both are wrapped in :class:`EmulatorMiddleware`, which logs every request, applies injected faults and,
on the API listener, checks the ``x-service-key`` header.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_opus.emulator.errors import EmulatorError, Forbidden, NotFound
from airflow_provider_opus.emulator.faults import ENDPOINTS, Fault
from airflow_provider_opus.emulator.output_files import OUTPUT_FILES_PATH, iter_output_file, parse_output_file_name

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_provider_opus.emulator.state import EmulatorState

ConnectionCloser = Callable[[Scope], None]
"""Closes the TCP connection that carries the request in the given scope."""

ADMIN_PREFIX = "/_emulator"
ADMIN_ENDPOINT = "admin"
_DISCONNECT_TIMEOUT = 5.0
_UNAUTHORIZED = JSONResponse({"message": "Invalid or missing x-service-key"}, status_code=401)

NonEmptyStr = Annotated[str, Field(min_length=1)]
#: The app of one listener: FastAPI for the API, plain Starlette for storage.
AppT = TypeVar("AppT", bound=Starlette)


class InitiateJobRequest(BaseModel):
    """The body of ``POST /job/initiate``."""

    workflowId: NonEmptyStr
    title: NonEmptyStr
    description: NonEmptyStr


class UploadUrlRequest(BaseModel):
    """The body of ``POST /job/file/upload``."""

    fileExtension: str
    accessScope: str


class ExecuteJobRequest(BaseModel):
    """The body of ``POST /job/execute``."""

    jobExecutionId: NonEmptyStr
    # Checked against the workflow's schema by the state, which gives more precise messages.
    jobPayloadSchemaInstance: Any


class InjectFaultsRequest(BaseModel):
    """The body of the admin route that queues faults."""

    model_config = ConfigDict(extra="forbid")
    endpoint: str
    faults: list[Any]


class JobStatusRequest(BaseModel):
    """The body of the admin route that sets a job's status."""

    model_config = ConfigDict(extra="forbid")
    status: NonEmptyStr


class StatusSequenceRequest(BaseModel):
    """The body of the admin route that scripts a workflow's job statuses."""

    model_config = ConfigDict(extra="forbid")
    # Required, but may be null (to clear); checked by the state, which gives more precise messages.
    statuses: Any = Field()
    checks_per_status: Any = None


class ResultsShapeRequest(BaseModel):
    """The body of the admin route that sets a workflow's results shape."""

    model_config = ConfigDict(extra="forbid")
    # Required, but may be null (to clear); checked by the state, which gives more precise messages.
    shape: Any = Field()


class FileServingRequest(BaseModel):
    """The body of the admin route that sets how output file downloads are answered."""

    model_config = ConfigDict(extra="forbid")
    # Checked by the state: pydantic would take "no" for false.
    require_key: Any = False
    redirect_to: Any = None


class ConfigRequest(BaseModel):
    """The body of the admin route that changes job durations."""

    model_config = ConfigDict(extra="forbid")
    job_duration: float | None = None
    job_duration_jitter: float | None = None
    upload_url_ttl: float | None = None


def create_api_app(state: EmulatorState, *, close_connection: ConnectionCloser | None = None) -> FastAPI:
    """
    Build the Opus API app, with the admin routes under ``/_emulator/``.

    :param state: the emulator state to serve.
    :param close_connection: how to close a client connection for ``drop`` faults. Without it (outside
        :class:`~airflow_provider_opus.emulator.OpusEmulator`) a drop raises inside the app, which the
        server answers with a 500 for "before" and a truncated response for "after".
    """
    app = FastAPI(title="Opus emulator", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/workflow/{workflow_id}", name="get_workflow")
    async def get_workflow(workflow_id: str) -> Response:
        return JSONResponse(state.workflow_details(workflow_id))

    @app.post("/job/initiate", name="initiate_job")
    async def initiate_job(body: InitiateJobRequest) -> Response:
        job_id = state.create_job(body.workflowId, body.title, body.description)
        return JSONResponse({"jobExecutionId": job_id}, status_code=201)

    @app.post("/job/file/upload", name="get_upload_url")
    async def get_upload_url(body: UploadUrlRequest) -> Response:
        presigned_url, file_url = state.issue_upload(body.fileExtension, body.accessScope)
        return JSONResponse({"presignedUrl": presigned_url, "fileUrl": file_url})

    @app.post("/job/execute", name="execute_job")
    async def execute_job(body: ExecuteJobRequest) -> Response:
        values = state.execute_job(body.jobExecutionId, body.jobPayloadSchemaInstance)
        return JSONResponse(
            {
                "success": True,
                "message": "Job execution has been started",
                "jobExecutionId": body.jobExecutionId,
                "jobPayloadSchemaInstance": values,
            },
            status_code=201,
        )

    @app.get("/job/{job_id}/status", name="get_job_status")
    async def get_job_status(job_id: str) -> Response:
        return JSONResponse({"status": state.job_status(job_id)})

    @app.get("/job/{job_id}/results", name="get_job_results")
    async def get_job_results(job_id: str) -> Response:
        return JSONResponse(state.job_results(job_id))

    @app.get("/job/{job_id}/audit", name="get_job_audit_log")
    async def get_job_audit_log(job_id: str) -> Response:
        return JSONResponse({"jobExecutionId": job_id, "auditTrail": state.job_audit_trail(job_id)})

    app.include_router(_admin_router(state), prefix=ADMIN_PREFIX)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return _serve_as(app, "api", state, close_connection)


def create_storage_app(state: EmulatorState, *, close_connection: ConnectionCloser | None = None) -> Starlette:
    """
    Build the storage app: presigned upload URLs and the output files of completed jobs point to it.

    :param state: the emulator state to record uploads in and find jobs in.
    :param close_connection: see :func:`create_api_app`.
    """

    async def storage_put(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            state.check_upload(token, request.query_params.get("X-Amz-Signature"))
        except Forbidden:
            # Read the body anyway: a client still sending would otherwise see a reset, not the 403.
            async for _ in request.stream():
                pass
            raise
        # Hash as the body streams in, so an upload of any size needs constant memory.
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        state.record_upload(
            token,
            size=size,
            sha256=digest.hexdigest(),
            content_type=request.headers.get("content-type"),
            had_service_key="x-service-key" in request.headers,
            had_authorization="authorization" in request.headers,
        )
        return Response(status_code=200)

    async def download_output_file(request: Request) -> Response:
        serving = state.file_serving()
        if serving["require_key"] and not _is_service_key(state, _header(request.scope, b"x-service-key")):
            return _UNAUTHORIZED
        redirect_to = serving["redirect_to"]
        # A request that already reached the redirect's host is served, so a test can redirect the emulator
        # to itself under another name (localhost for 127.0.0.1) and follow the redirect.
        if redirect_to is not None and request.headers.get("host", "").lower() != urlsplit(redirect_to).netloc.lower():
            query = f"?{request.url.query}" if request.url.query else ""
            location = f"{redirect_to.rstrip('/')}{request.url.path}{query}"
            return Response(status_code=302, headers={"Location": location})
        name = parse_output_file_name(request.path_params["name"])
        if name is None:
            raise NotFound(f"Output file {request.path_params['name']} not found")
        job_id, index = name
        size = state.output_file_size(job_id, index)
        headers = {"Content-Length": str(size)}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers, media_type="application/pdf")

        async def chunks() -> AsyncIterator[bytes]:
            # Made one at a time as the client takes them: uvicorn's send waits while the socket's buffer is full.
            for chunk in iter_output_file(job_id, index, size):
                yield chunk

        return StreamingResponse(chunks(), headers=headers, media_type="application/pdf")

    app = Starlette(
        routes=[
            Route("/upload/{token}", storage_put, methods=["PUT"], name="storage_put"),
            Route(f"{OUTPUT_FILES_PATH}/{{name}}", download_output_file, methods=["GET"], name="download_output_file"),
        ]
    )
    return _serve_as(app, "storage", state, close_connection)


def _serve_as(
    app: AppT, listener: Literal["api", "storage"], state: EmulatorState, close_connection: ConnectionCloser | None
) -> AppT:
    """Give a listener's app the emulator's error answers, request log and fault injection."""
    _add_error_handlers(app)
    app.add_middleware(
        EmulatorMiddleware,
        state=state,
        listener=listener,
        routes=app.router.routes,
        close_connection=close_connection,
    )
    return app


def _admin_router(state: EmulatorState) -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    @router.post("/faults")
    async def inject_faults(body: InjectFaultsRequest) -> Response:
        pending = state.inject(body.endpoint, body.faults)
        return JSONResponse({"endpoint": body.endpoint, "pending": pending}, status_code=201)

    @router.delete("/faults")
    async def clear_faults(endpoint: str | None = None) -> Response:
        state.clear_faults(endpoint or None)
        return Response(status_code=204)

    @router.get("/requests")
    async def list_requests(endpoint: str | None = None) -> Response:
        return JSONResponse({"requests": state.requests(endpoint or None)})

    @router.get("/jobs")
    async def list_jobs() -> Response:
        return JSONResponse({"jobs": state.jobs()})

    @router.post("/jobs/{job_id}/status")
    async def set_job_status(job_id: str, body: JobStatusRequest) -> Response:
        state.set_job_status(job_id, body.status)
        return JSONResponse({"jobExecutionId": job_id, "status": body.status})

    @router.get("/workflows/{workflow_id}/status-sequence")
    async def get_status_sequence(workflow_id: str) -> Response:
        return JSONResponse({"workflowId": workflow_id, "statuses": state.status_sequence(workflow_id)})

    @router.post("/workflows/{workflow_id}/status-sequence")
    async def set_status_sequence(workflow_id: str, body: StatusSequenceRequest) -> Response:
        statuses = state.set_status_sequence(workflow_id, body.statuses, body.checks_per_status)
        return JSONResponse({"workflowId": workflow_id, "statuses": statuses})

    # These two read their setting on GET (or a POST without a body) and set it on a POST with one.
    @router.api_route("/workflows/{workflow_id}/results-shape", methods=["GET", "POST"])
    async def results_shape(workflow_id: str, body: ResultsShapeRequest | None = None) -> Response:
        shape = state.results_shape(workflow_id) if body is None else state.set_results_shape(workflow_id, body.shape)
        return JSONResponse({"workflowId": workflow_id, "shape": shape})

    @router.api_route("/file-serving", methods=["GET", "POST"])
    async def file_serving(body: FileServingRequest | None = None) -> Response:
        if body is None:
            return JSONResponse(state.file_serving())
        return JSONResponse(state.configure_file_serving(body.require_key, body.redirect_to))

    @router.get("/uploads")
    async def list_uploads() -> Response:
        return JSONResponse({"uploads": state.uploads()})

    @router.post("/config")
    async def configure(body: ConfigRequest) -> Response:
        return JSONResponse(state.configure(**body.model_dump()))

    @router.post("/reset")
    async def reset() -> Response:
        state.reset()
        return Response(status_code=204)

    return router


def _add_error_handlers(app: Starlette) -> None:
    app.add_exception_handler(EmulatorError, _emulator_error)
    app.add_exception_handler(HTTPException, _http_error)


async def _emulator_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EmulatorError)
    return JSONResponse({"message": exc.message}, status_code=exc.status_code)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
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
        service_key = _header(scope, b"x-service-key")
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
        if self.listener == "api" and endpoint != ADMIN_ENDPOINT and not self._authorized(service_key):
            await _drain(receive)
            app = _UNAUTHORIZED
        if fault is not None and fault.drop == "after":
            await _send_truncated(app, scope, receive, respond)
            await self._drop_connection(scope, receive)
            return
        await app(scope, receive, respond)

    def _endpoint(self, scope: Scope) -> str | None:
        if self.listener == "api" and scope["path"].startswith(f"{ADMIN_PREFIX}/"):
            return ADMIN_ENDPOINT
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                name = getattr(route, "name", None)
                return name if name in ENDPOINTS else None
        return None

    def _authorized(self, service_key: bytes | None) -> bool:
        return _is_service_key(self.state, service_key)

    async def _drop_connection(self, scope: Scope, receive: Receive) -> None:
        if self.close_connection is None:
            raise ConnectionAbortedError("injected drop fault")
        self.close_connection(scope)
        # Returning before the server has seen the disconnect would make it log an incomplete response
        # (or send a 500), so wait for it.
        await asyncio.wait_for(_until_disconnected(receive), _DISCONNECT_TIMEOUT)


def _is_service_key(state: EmulatorState, service_key: bytes | None) -> bool:
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


def _header(scope: Scope, name: bytes) -> bytes | None:
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
