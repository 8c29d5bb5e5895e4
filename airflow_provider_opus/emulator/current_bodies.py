"""
The request bodies of the current generation, checked as strictly as the live API checks them.

The live API validates bodies the NestJS way: a key it does not know is an error (``"<key> should not
exist"``), and every problem found is one entry of a ``message`` list in the 400 answer. A ``null``
value counts as not given, as for NestJS's optional fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_opus.emulator.errors import InvalidBody
from airflow_provider_opus.emulator.generations import (
    ACCESS_SCOPES,
    DEFAULT_JOB_SOURCE,
    FILE_EXTENSIONS,
    JOB_SOURCES,
    is_http_url,
)
from airflow_provider_opus.emulator.versions import is_uuid

INITIATE_FIELDS = (
    "workflowId",
    "referenceEntityId",
    "workflowVersionId",
    "workflowVersionNumber",
    "title",
    "description",
    "refUserId",
    "source",
    "workspaces",
    "initialInput",
    "webAppId",
)
UPLOAD_FIELDS = ("fileExtension", "accessScope", "originalName", "workspaceId", "workflowId")
EXECUTE_FIELDS = ("jobExecutionId", "jobPayloadSchemaInstance", "callbackUrl", "workspaces")
CALLBACK_URL_MESSAGE = "callbackUrl must be a URL address"
# Kept on the job as given, for the admin summary.
_INITIATE_EXTRAS = ("refUserId", "workspaces", "initialInput", "webAppId")


@dataclass(frozen=True)
class InitiateBody:
    """A checked ``POST /job/initiate`` body; ``initiated_with`` holds ``source`` and what else was given."""

    workflow_id: str | None
    reference_entity_id: str | None
    version_id: str | None
    version_number: int | None
    title: str
    description: str
    initiated_with: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UploadBody:
    """A checked ``POST /job/file/upload`` body; ``owner`` holds ``originalName``, ``workspaceId``, ``workflowId``."""

    file_extension: str
    access_scope: str | None
    owner: dict[str, Any]


@dataclass(frozen=True)
class ExecuteBody:
    """A checked ``POST /job/execute`` body."""

    job_id: str
    instance: dict[str, Any]
    callback_url: str
    workspaces: str | None


def read_body(raw: bytes) -> dict[str, Any]:
    """
    Parse a request body that must be a JSON object.

    :raises InvalidBody: if it is empty, not JSON, or not an object.
    """
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:
        raise InvalidBody(["request body is not valid JSON"]) from None
    if not isinstance(data, dict):
        raise InvalidBody(["request body must be a JSON object"])
    return data


def parse_initiate(data: dict[str, Any]) -> InitiateBody:
    """
    Check a ``POST /job/initiate`` body.

    :raises InvalidBody: listing every problem: unknown keys, wrong types, no workflow named, an unknown source.
    """
    problems = _unknown_keys(data, INITIATE_FIELDS)
    workflow_id = _text(data, "workflowId", problems)
    reference = _uuid(data, "referenceEntityId", problems)
    if workflow_id is None and data.get("referenceEntityId") is None and "workflowId" not in _named(problems):
        problems.append("workflowId should not be empty (or give referenceEntityId)")
    version_id = _uuid(data, "workflowVersionId", problems)
    number = data.get("workflowVersionNumber")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
        problems.append("workflowVersionNumber must be a positive integer")
    title = _text(data, "title", problems, empty_ok=True)
    description = _text(data, "description", problems, empty_ok=True)
    source = data.get("source")
    if source is not None and source not in JOB_SOURCES:
        problems.append(f"source must be one of the following values: {', '.join(JOB_SOURCES)}")
    for name in ("refUserId", "workspaces", "webAppId"):
        _text(data, name, problems, empty_ok=True)
    if data.get("initialInput") is not None and not isinstance(data["initialInput"], dict):
        problems.append("initialInput must be an object")
    if problems:
        raise InvalidBody(problems)
    extras = {name: data[name] for name in _INITIATE_EXTRAS if data.get(name) is not None}
    return InitiateBody(
        workflow_id,
        reference,
        version_id,
        number,
        title or "",
        description or "",
        {"source": source or DEFAULT_JOB_SOURCE, **extras},
    )


def parse_upload(data: dict[str, Any]) -> UploadBody:
    """
    Check a ``POST /job/file/upload`` body.

    :raises InvalidBody: for unknown keys, a missing or unsupported ``fileExtension``, an unknown
        ``accessScope``, or ``accessScope`` ``workspace`` without ``workspaceId`` or ``workflowId``.
    """
    problems = _unknown_keys(data, UPLOAD_FIELDS)
    extension = _text(data, "fileExtension", problems)
    if extension is None and "fileExtension" not in _named(problems):
        problems.append("fileExtension should not be empty")
    elif extension is not None and extension.strip().lstrip(".").lower() not in FILE_EXTENSIONS:
        problems.append(f"fileExtension must be one of the following values: {', '.join(FILE_EXTENSIONS)}")
    scope = data.get("accessScope")
    if scope is not None and scope not in ACCESS_SCOPES:
        problems.append(f"accessScope must be one of the following values: {', '.join(ACCESS_SCOPES)}")
    owner = {name: _text(data, name, problems) for name in ("originalName", "workspaceId", "workflowId")}
    if scope == "workspace" and owner["workspaceId"] is None and owner["workflowId"] is None:
        problems.append("workspaceId or workflowId is required when accessScope is workspace")
    if problems:
        raise InvalidBody(problems)
    assert extension is not None
    return UploadBody(extension, scope, owner)


def parse_execute(data: dict[str, Any]) -> ExecuteBody:
    """
    Check a ``POST /job/execute`` body (the instance itself is checked against the workflow later).

    :raises InvalidBody: for unknown keys, no ``jobExecutionId``, an instance that is not an object, or a
        ``callbackUrl`` that is missing, empty or not an http(s) URL.
    """
    problems = _unknown_keys(data, EXECUTE_FIELDS)
    job_id = _text(data, "jobExecutionId", problems)
    if job_id is None and "jobExecutionId" not in _named(problems):
        problems.append("jobExecutionId should not be empty")
    instance = data.get("jobPayloadSchemaInstance")
    if not isinstance(instance, dict):
        problems.append("jobPayloadSchemaInstance must be an object")
    callback_url = data.get("callbackUrl")
    if not is_http_url(callback_url):
        problems.append(CALLBACK_URL_MESSAGE)
    workspaces = _text(data, "workspaces", problems, empty_ok=True)
    if problems:
        raise InvalidBody(problems)
    assert job_id is not None and isinstance(instance, dict) and isinstance(callback_url, str)
    return ExecuteBody(job_id, instance, callback_url.strip(), workspaces)


def _unknown_keys(data: dict[str, Any], known: tuple[str, ...]) -> list[str]:
    return [f"property {key} should not exist" for key in data if key not in known]


def _named(problems: list[str]) -> set[str]:
    """Return the fields the problems so far are about (their first word)."""
    return {problem.split(" ", 1)[0] for problem in problems}


def _text(data: dict[str, Any], name: str, problems: list[str], *, empty_ok: bool = False) -> str | None:
    """Read an optional string field; an empty one counts as not given unless ``empty_ok``."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{name} must be a string")
        return None
    if not value.strip() and not empty_ok:
        return None
    return value


def _uuid(data: dict[str, Any], name: str, problems: list[str]) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not is_uuid(value):
        problems.append(f"{name} must be a UUID")
        return None
    return str(value)
