"""The admin routes under ``/_emulator/``: steering and inspecting the emulator from another process."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request  # noqa: TC002  (FastAPI reads the route annotations at run time)
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from airflow_provider_opus.emulator.state import EmulatorState

NonEmptyStr = Annotated[str, Field(min_length=1)]


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
    # Checked by the state, which names the generations.
    api: Any = None


def admin_router(state: EmulatorState) -> APIRouter:
    """
    Build the admin routes (mounted under ``/_emulator/``): the same operations as :class:`OpusEmulator`'s helpers.

    :param state: the emulator state they steer.
    """
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

    @router.get("/config")
    async def get_config() -> Response:
        return JSONResponse(state.config())

    @router.post("/config")
    async def configure(body: ConfigRequest) -> Response:
        return JSONResponse(state.configure(**body.model_dump()))

    # The built-in callback receiver: point a job's callbackUrl here (OpusEmulator.callback_url).
    @router.post("/callbacks")
    async def receive_callback(request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        state.receive_callback(body, request.headers.get("content-type"))
        return JSONResponse({"received": True})

    @router.get("/callbacks")
    async def list_callbacks() -> Response:
        return JSONResponse({"callbacks": state.callbacks()})

    @router.get("/callback-deliveries")
    async def list_callback_deliveries() -> Response:
        return JSONResponse({"deliveries": state.callback_deliveries()})

    @router.post("/reset")
    async def reset() -> Response:
        state.reset()
        return Response(status_code=204)

    return router
