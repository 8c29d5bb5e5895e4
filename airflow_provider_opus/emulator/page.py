"""
A workflow's page, ``GET /app/workflow/{id}``: what the provider's "Opus workflow" link opens.

The provider builds that link as ``{app_url}/app/workflow/{id}``, so a connection whose ``app_url`` is
the emulator's URL (as :meth:`OpusEmulator.connection_json` sets it) opens this page instead of
app.opus.com. It needs no key (a browser sends none), shows the workflow's name, id, version and inputs,
and links nowhere. The link of a job pinned to a version carries ``?version=N`` or
``?workflowVersionId=<uuid>``; the page then shows that version.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.requests import Request  # noqa: TC002  (FastAPI reads the route annotations at run time)
from starlette.responses import HTMLResponse, Response

from airflow_provider_opus.emulator.errors import EmulatorError
from airflow_provider_opus.emulator.versions import parse_version_number

if TYPE_CHECKING:
    from airflow_provider_opus.emulator.state import EmulatorState
    from airflow_provider_opus.emulator.versions import WorkflowVersion
    from airflow_provider_opus.emulator.workflows import Workflow

_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #999;padding:.3em .6em}"
)


def page_router(state: EmulatorState) -> APIRouter:
    """
    Build the route of the workflow pages.

    :param state: the emulator state whose workflows to show.
    """
    router = APIRouter()

    @router.get("/app/workflow/{workflow_id}", name="app_page")
    async def workflow_page(workflow_id: str, request: Request) -> Response:
        query = request.query_params
        try:
            workflow = state.served_workflow(workflow_id)
            number = parse_version_number(query.get("version"), "version")
            version = workflow.version(number, query.get("workflowVersionId"))
        except EmulatorError as exc:
            page = _document("Workflow not found", f"<p>{escape(exc.message)}</p>")
            return HTMLResponse(page, status_code=exc.status_code)
        return HTMLResponse(render_workflow_page(workflow, version))

    return router


def render_workflow_page(workflow: Workflow, version: WorkflowVersion | None = None) -> str:
    """
    Render a workflow's page: name, id, a version and its inputs.

    :param workflow: the workflow.
    :param version: the version to show; None for the latest active one.
    :return: a whole HTML document.
    """
    version = version or workflow.latest
    rows = "".join(
        "<tr>"
        f"<td>{escape(str(definition.get('display_name', name)))}</td>"
        f"<td><code>{escape(name)}</code></td>"
        f"<td>{escape(str(definition.get('type')))}</td>"
        f"<td>{'optional' if definition.get('is_nullable') else 'required'}</td>"
        "</tr>"
        for name, definition in version.inputs.items()
    )
    form = "v2 graph" if workflow.graph is not None else "documented"
    body = (
        f"<h1>{escape(workflow.name)}</h1>"
        f"<p>Workflow id <code>{escape(workflow.workflow_id)}</code>, version {version.number} "
        f"(<code>{escape(version.version_id)}</code>), {form} form. Served by the Opus emulator.</p>"
        "<h2>Inputs</h2>"
        "<table><tr><th>Name</th><th>Variable</th><th>Type</th><th></th></tr>"
        f"{rows}</table>"
    )
    return _document(f"{workflow.name} - Opus emulator", body)


def _document(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
