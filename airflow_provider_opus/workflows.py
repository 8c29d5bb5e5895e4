"""What identifies a workflow run and what ``GET /workflow/{id}`` says of its inputs, in either API generation.

The older reference answers ``GET /workflow/{id}`` with a ``jobPayloadSchema``; live "v2" workflows
answer with their node graph instead, the inputs in the input node's ``input_schema.schema``.
:func:`job_payload_schema_from` reads either into the one shape the payload rules take, so nothing
downstream knows which it was. The version pin, the fields of ``POST /job/initiate`` and the workflow
id's own rule live here too: one place for what both the hook and the execute operator send.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_opus.exceptions import (
    OpusInvalidArgumentError,
    OpusResponseError,
    OpusWorkflowSchemaError,
    describe_value,
)
from airflow_provider_opus.workflow_inputs import WorkflowInput

#: The values ``source`` of ``POST /job/initiate`` takes (Opus's default for a service key is ``api``).
JOB_SOURCES = ("email-agent", "chat-agent", "scheduled", "api", "manual", "agent", "opus-ai", "web-app")
#: Where a user copies a workflow id from; v2 ids are UUIDs, older ones 16 characters.
WORKFLOW_ID_HINT = "give the id from app.opus.com/app/workflow/<id> (v2 workflows have UUID ids)"

_DIGITS = re.compile(r"\d+")


def is_uuid(text: str) -> bool:
    """
    Tell whether ``text`` is a UUID (v2 workflow ids and version ids are).

    :param text: an id.
    """
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class WorkflowVersion:
    """
    A pinned version of a workflow: a number, or a version's UUID.

    :param number: the version number, or None when pinned by id.
    :param version_id: the version's UUID, or None when pinned by number.
    """

    number: int | None = None
    version_id: str | None = None

    @classmethod
    def parse(cls, value: Any, name: str = "workflow_version") -> WorkflowVersion | None:
        """
        Read a version pin: an integer or digit string pins the number, a UUID the version id.

        :param value: the pin as given; None (or a blank string) pins nothing.
        :param name: the argument's name, for the message.
        :raises OpusInvalidArgumentError: anything else, before any call.
        """
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return cls(number=value)
        if isinstance(value, str):
            text = value.strip()
            if _DIGITS.fullmatch(text) and int(text) >= 1:
                return cls(number=int(text))
            if is_uuid(text):
                return cls(version_id=text)
        raise OpusInvalidArgumentError(
            f"{name} must be a version number (1, 2, ...) or a version's UUID, got {describe_value(value)}: "
            "leave it unset to run the latest active version"
        )

    @property
    def query(self) -> dict[str, str]:
        """The query of ``GET /workflow/{id}`` that describes this version."""
        return {"version": str(self.number)} if self.number is not None else {"workflowVersionId": str(self.version_id)}

    @property
    def initiate_fields(self) -> dict[str, Any]:
        """The fields of ``POST /job/initiate`` that pin a job to this version."""
        if self.number is not None:
            return {"workflowVersionNumber": self.number}
        return {"workflowVersionId": self.version_id}

    def __str__(self) -> str:
        return str(self.number) if self.number is not None else str(self.version_id)


def initiate_job_body(
    workflow_id: str,
    title: str,
    description: str,
    *,
    version: WorkflowVersion | None = None,
    source: str | None = None,
    ref_user_id: str | None = None,
    workspaces: str | list[str] | tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """
    Return the body of ``POST /job/initiate``: only the fields given, so either generation accepts it.

    :param workflow_id: the workflow.
    :param title: the job's title.
    :param description: the job's description.
    :param version: the version to pin, or None for the latest active one.
    :param source: where the job came from, one of :data:`JOB_SOURCES`.
    :param ref_user_id: the Opus user the job is attributed to.
    :param workspaces: workspace ids to check access against: a list, or a comma-separated string.
    :raises OpusInvalidArgumentError: a field of the wrong type or value, before any call.
    """
    for name, value in (("workflow_id", workflow_id), ("title", title), ("description", description)):
        if not isinstance(value, str) or not value.strip():
            raise OpusInvalidArgumentError(f"{name} must be a non-empty string, got {describe_value(value)}")
    body: dict[str, Any] = {"workflowId": workflow_id, "title": title, "description": description}
    if version is not None:
        body.update(version.initiate_fields)
    if source is not None:
        body["source"] = checked_source(source)
    if ref_user_id is not None:
        if not isinstance(ref_user_id, str) or not ref_user_id.strip():
            raise OpusInvalidArgumentError(f"ref_user_id must be a non-empty string, got {describe_value(ref_user_id)}")
        body["refUserId"] = ref_user_id.strip()
    if workspaces is not None:
        body["workspaces"] = workspaces_field(workspaces)
    return body


def checked_source(source: Any) -> str:
    """
    Return a job's ``source`` after checking it is one Opus documents.

    :param source: where the job came from.
    :raises OpusInvalidArgumentError: a value not in :data:`JOB_SOURCES`.
    """
    if source not in JOB_SOURCES:
        raise OpusInvalidArgumentError(f"source must be one of {', '.join(JOB_SOURCES)}, got {describe_value(source)}")
    return str(source)


def workspaces_field(workspaces: Any) -> str:
    """
    Return workspace ids as Opus takes them: one comma-separated string.

    :param workspaces: a list of ids, or a comma-separated string.
    :raises OpusInvalidArgumentError: not strings, or none at all.
    """
    items = workspaces.split(",") if isinstance(workspaces, str) else workspaces
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise OpusInvalidArgumentError(
            f"workspaces must be a list of workspace ids or a comma-separated string, got {describe_value(workspaces)}"
        )
    ids = [item.strip() for item in items if item.strip()]
    if not ids:
        raise OpusInvalidArgumentError("workspaces is empty: give workspace ids, or leave it unset")
    return ",".join(ids)


def job_payload_schema_from(details: Mapping[str, Any], path: str) -> dict[str, Any]:
    """
    Return a workflow's inputs as a ``jobPayloadSchema``, from either generation's details.

    A v2 graph's entries are read into the same shape: the type is ``allowed_types[0].type`` and the
    ``type_definition`` is kept; ``display_name`` and ``is_nullable`` are taken when an entry has them,
    else the variable name and "required" (the graph's documentation does not say more).

    :param details: what ``GET /workflow/{id}`` returned.
    :param path: the path called, for errors.
    :raises OpusResponseError: the details hold neither shape (the message lists the keys they hold),
        or the schema is not an object of objects.
    :raises OpusWorkflowSchemaError: an entry cannot be read (:meth:`WorkflowInput.from_schema_entry
        <airflow_provider_opus.workflow_inputs.WorkflowInput.from_schema_entry>`), naming it.
    """
    schema: dict[str, Any] | None = None
    if "jobPayloadSchema" in details:
        schema = details["jobPayloadSchema"]
        if not isinstance(schema, dict):
            raise OpusResponseError("GET", path, f"jobPayloadSchema is {describe_value(schema)}, expected an object")
    elif "workflow_input_node_id" in details and "nodes" in details:
        schema = _graph_inputs(details, path)
    if schema is not None:
        for variable, entry in schema.items():  # each entry checked here, before any billed call
            WorkflowInput.from_schema_entry(str(variable), entry, path)
        return schema
    keys = ", ".join(sorted(map(str, details))) or "none"
    raise OpusResponseError(
        "GET",
        path,
        f"the workflow details hold neither jobPayloadSchema nor a workflow graph (workflow_input_node_id and "
        f"nodes), so its inputs are unknown (keys: {keys})",
    )


def _graph_inputs(details: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Read a v2 graph's input node into ``jobPayloadSchema`` entries."""
    nodes, node_id = details["nodes"], details["workflow_input_node_id"]
    node = nodes.get(node_id) if isinstance(nodes, Mapping) and isinstance(node_id, str) else None
    if not isinstance(node, Mapping):
        raise OpusResponseError("GET", path, f"the workflow graph has no input node {node_id!r} in nodes")
    entries = None
    for schema_field in ("input_schema", "output_schema"):  # one integration reads the output schema as a fallback
        holder = node.get(schema_field)
        if isinstance(holder, Mapping) and isinstance(holder.get("schema"), Mapping):
            entries = holder["schema"]
            break
    if entries is None:
        raise OpusResponseError("GET", path, f"the workflow graph's input node {node_id!r} has no input_schema.schema")
    schema: dict[str, Any] = {}
    for variable, entry in entries.items():
        where = f"input {variable!r} of the workflow graph"
        if not isinstance(entry, Mapping):
            raise OpusWorkflowSchemaError("GET", path, f"{where} is {describe_value(entry)}, expected an object")
        allowed = entry.get("allowed_types")
        first = allowed[0] if isinstance(allowed, list) and allowed else None
        kind = first.get("type") if isinstance(first, Mapping) else entry.get("type")
        if not isinstance(kind, str) or not kind:
            raise OpusWorkflowSchemaError("GET", path, f"{where} names no type in allowed_types")
        schema[str(variable)] = {
            **{key: value for key, value in entry.items() if key in ("id", "display_name", "is_nullable", "tags")},
            "variable_name": str(variable),
            "type": kind,
            "type_definition": entry.get("type_definition"),
        }
    return schema
