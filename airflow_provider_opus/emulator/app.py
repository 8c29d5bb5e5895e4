"""
ASGI apps for the emulator's two listeners: the Opus API, and storage (presigned uploads, output files).

The API listener serves the generation in force (``state.api``) on each request: the legacy routes here,
or the current ones of :mod:`~airflow_provider_opus.emulator.current_app`. Both listeners are wrapped in
:class:`~airflow_provider_opus.emulator.middleware.EmulatorMiddleware`, which logs every request, applies
injected faults and, on the API listener, checks the ``x-service-key`` header.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from airflow_provider_opus.emulator.admin import admin_router
from airflow_provider_opus.emulator.current_app import create_current_app
from airflow_provider_opus.emulator.errors import Forbidden, NotFound
from airflow_provider_opus.emulator.generations import CURRENT
from airflow_provider_opus.emulator.middleware import (
    ADMIN_PREFIX,
    UNAUTHORIZED,
    ConnectionCloser,
    add_error_handlers,
    header,
    is_service_key,
    validation_error,
    wrap_listener,
)
from airflow_provider_opus.emulator.output_files import OUTPUT_FILES_PATH, iter_output_file, parse_output_file_name
from airflow_provider_opus.emulator.page import page_router

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from airflow_provider_opus.emulator.state import EmulatorState

NonEmptyStr = Annotated[str, Field(min_length=1)]


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


def create_api_app(state: EmulatorState, *, close_connection: ConnectionCloser | None = None) -> ASGIApp:
    """
    Build the Opus API app, with the admin routes under ``/_emulator/`` and the workflow pages under ``/app/``.

    Each request is served by the generation in force when it arrives, so ``configure(api=...)`` takes
    effect at once.

    :param state: the emulator state to serve.
    :param close_connection: how to close a client connection for ``drop`` faults. Without it (outside
        :class:`~airflow_provider_opus.emulator.OpusEmulator`) a drop raises inside the app, which the
        server answers with a 500 for "before" and a truncated response for "after".
    """
    legacy, current = create_legacy_app(state), create_current_app(state)

    async def by_generation(scope: Scope, receive: Receive, send: Send) -> None:
        await (current if state.api == CURRENT else legacy)(scope, receive, send)

    # Both apps name the seven endpoints alike, so either one's routes name the requests.
    return wrap_listener(by_generation, "api", state, close_connection, legacy.router.routes)


def create_legacy_app(state: EmulatorState) -> FastAPI:
    """
    Build the legacy generation's API: the older API reference, lenient about unknown body keys.

    :param state: the emulator state to serve.
    """
    app = FastAPI(title="Opus emulator (legacy API)", docs_url=None, redoc_url=None, openapi_url=None)

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

    app.include_router(admin_router(state), prefix=ADMIN_PREFIX)
    app.include_router(page_router(state))
    app.add_exception_handler(RequestValidationError, validation_error)
    add_error_handlers(app)
    return app


def create_storage_app(state: EmulatorState, *, close_connection: ConnectionCloser | None = None) -> ASGIApp:
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
        # Hash as the body streams in, so an upload of any size needs constant memory. Past the URL's limit
        # (the current generation's 10 MiB) the rest is read and dropped, so that the client, still
        # sending, hears the 413 rather than a reset.
        limit = state.upload_limit(token)
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if limit is None or size <= limit:
                digest.update(chunk)
        if limit is not None and size > limit:
            state.refuse_upload(token, size)
            message = f"File too large: {size} bytes; an upload may be at most {limit} bytes (10 MiB)"
            return JSONResponse({"message": message}, status_code=413)
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
        if serving["require_key"] and not is_service_key(state, header(request.scope, b"x-service-key")):
            return UNAUTHORIZED
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
    add_error_handlers(app)
    return wrap_listener(app, "storage", state, close_connection, app.router.routes)
