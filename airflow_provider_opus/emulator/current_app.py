"""
The current generation's API: what Opus publishes today (see docs/emulator.md, "API generations").

Bodies are read as JSON and checked by :mod:`~airflow_provider_opus.emulator.current_bodies`, which
refuses unknown keys the way the live API does; the seven endpoints keep the legacy ones' names, paths
and endpoint names, so faults, the request log and the admin routes work alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.requests import Request  # noqa: TC002  (FastAPI reads the route annotations at run time)
from starlette.responses import JSONResponse, Response

from airflow_provider_opus.emulator.admin import admin_router
from airflow_provider_opus.emulator.current_bodies import parse_execute, parse_initiate, parse_upload, read_body
from airflow_provider_opus.emulator.errors import BadRequest
from airflow_provider_opus.emulator.generations import MAX_UPLOAD_BYTES
from airflow_provider_opus.emulator.middleware import ADMIN_PREFIX, add_error_handlers
from airflow_provider_opus.emulator.page import page_router
from airflow_provider_opus.emulator.versions import is_uuid, parse_version_number

if TYPE_CHECKING:
    from airflow_provider_opus.emulator.state import EmulatorState


def create_current_app(state: EmulatorState) -> FastAPI:
    """
    Build the current generation's API, with the admin routes and the workflow pages.

    :param state: the emulator state to serve.
    """
    app = FastAPI(title="Opus emulator (current API)", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/workflow/{workflow_id}", name="get_workflow")
    async def get_workflow(workflow_id: str, request: Request) -> Response:
        query = request.query_params
        number = parse_version_number(query.get("version"), "version")
        version_id = query.get("workflowVersionId")
        if version_id is not None and not is_uuid(version_id):
            raise BadRequest(f"workflowVersionId must be a UUID, got {version_id!r}")
        return JSONResponse(state.workflow_version_details(workflow_id, number, version_id))

    @app.post("/job/initiate", name="initiate_job")
    async def initiate_job(request: Request) -> Response:
        body = parse_initiate(read_body(await request.body()))
        workflow_id = state.resolve_workflow(body.workflow_id, body.reference_entity_id)
        job_id = state.create_job(
            workflow_id,
            body.title,
            body.description,
            version_number=body.version_number,
            version_id=body.version_id,
            initiated_with=body.initiated_with,
        )
        return JSONResponse({"jobExecutionId": job_id}, status_code=201)

    @app.post("/job/file/upload", name="get_upload_url")
    async def get_upload_url(request: Request) -> Response:
        body = parse_upload(read_body(await request.body()))
        presigned_url, file_url = state.issue_upload(
            body.file_extension, body.access_scope, current=body.owner, max_bytes=MAX_UPLOAD_BYTES
        )
        return JSONResponse({"presignedUrl": presigned_url, "fileUrl": file_url})

    @app.post("/job/execute", name="execute_job")
    async def execute_job(request: Request) -> Response:
        body = parse_execute(read_body(await request.body()))
        state.execute_job(body.job_id, body.instance, callback_url=body.callback_url)
        # The current reference no longer echoes the instance.
        return JSONResponse(
            {"success": True, "jobExecutionId": body.job_id, "message": "Job execution has been started"},
            status_code=201,
        )

    @app.get("/job/{job_id}/status", name="get_job_status")
    async def get_job_status(job_id: str) -> Response:
        return JSONResponse({"status": state.job_status(job_id)})

    @app.get("/job/{job_id}/results", name="get_job_results")
    async def get_job_results(job_id: str) -> Response:
        return JSONResponse(state.job_results_current(job_id))

    @app.get("/job/{job_id}/audit", name="get_job_audit_log")
    async def get_job_audit_log(job_id: str) -> Response:
        return JSONResponse(state.job_node_audit(job_id))

    app.include_router(admin_router(state), prefix=ADMIN_PREFIX)
    app.include_router(page_router(state))
    add_error_handlers(app)
    return app
