"""
Workflow versions: the ``versions`` list of a workflows file, and which version a request means.

The current API reference lets ``GET /workflow/{id}`` describe one version (``?version=N`` or
``?workflowVersionId=<uuid>``, the id winning) and ``POST /job/initiate`` pin a job to one; without
either, the latest active version is meant. A workflow without a ``versions`` list has one version,
number 1, whose id is derived from the workflow id, so that it stays the same from run to run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_opus.emulator.errors import BadRequest, NotFound

# Namespace of the version ids the emulator derives for workflows that list no versions.
_VERSION_NAMESPACE = uuid.UUID("6f1d8d52-3c1b-4f8e-9a57-0c0e5e2b7a10")
_VERSION_KEYS = frozenset({"version", "workflowVersionId", "active", "jobPayloadSchema"})

InputParser = Callable[[str, Any, str], dict[str, Any]]
"""Checks one ``jobPayloadSchema`` entry (name, entry, where) and returns it with its defaults."""


class VersionError(ValueError):
    """A ``versions`` list is invalid; the message names the field."""


@dataclass(frozen=True)
class WorkflowVersion:
    """
    One version of a workflow.

    :param number: the version number, from 1.
    :param version_id: the version's UUID (``workflowVersionId``).
    :param inputs: its jobPayloadSchema: input variable name to definition.
    :param active: whether it counts as the latest version when it is the highest.
    """

    number: int
    version_id: str
    inputs: dict[str, dict[str, Any]]
    active: bool = True


def default_version(workflow_id: str, inputs: dict[str, dict[str, Any]], number: int = 1) -> WorkflowVersion:
    """
    Return the only version of a workflow that lists none.

    :param workflow_id: the workflow's id, from which the version id is derived.
    :param inputs: the workflow's jobPayloadSchema.
    :param number: the version number.
    """
    version_id = str(uuid.uuid5(_VERSION_NAMESPACE, f"{workflow_id}:{number}"))
    return WorkflowVersion(number, version_id, inputs)


def parse_versions(raw: Any, workflow_id: str, parse_input: InputParser) -> tuple[WorkflowVersion, ...]:
    """
    Validate a workflow's ``versions`` list.

    :param raw: the list: ``[{"version": 1, "workflowVersionId": "<uuid>", "active": true,
        "jobPayloadSchema": {...}}, ...]``; ``workflowVersionId`` and ``active`` are optional.
    :param workflow_id: the workflow's id, to derive the ids not given.
    :param parse_input: checks one ``jobPayloadSchema`` entry.
    :return: the versions, lowest number first.
    :raises VersionError: for a malformed entry, a number or id given twice, or no active version.
    """
    if not isinstance(raw, list) or not raw:
        raise VersionError("versions must be a non-empty list")
    versions: dict[int, WorkflowVersion] = {}
    for index, entry in enumerate(raw):
        where = f"versions[{index}]"
        if not isinstance(entry, dict):
            raise VersionError(f"{where}: must be an object")
        unknown = sorted(set(entry) - _VERSION_KEYS)
        if unknown:
            raise VersionError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_VERSION_KEYS))}"
            )
        number = entry.get("version")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise VersionError(f"{where}: version must be an integer >= 1")
        if number in versions:
            raise VersionError(f"{where}: version {number} is defined twice")
        schema = entry.get("jobPayloadSchema")
        if not isinstance(schema, dict):
            raise VersionError(f"{where}: jobPayloadSchema is required and must be an object")
        inputs = {name: parse_input(name, item, f"{where}.jobPayloadSchema.{name}") for name, item in schema.items()}
        version = default_version(workflow_id, inputs, number)
        version_id = entry.get("workflowVersionId", version.version_id)
        if not is_uuid(version_id):
            raise VersionError(f"{where}: workflowVersionId must be a UUID")
        active = entry.get("active", True)
        if not isinstance(active, bool):
            raise VersionError(f"{where}: active must be true or false")
        versions[number] = WorkflowVersion(number, str(version_id).lower(), inputs, active)
    ordered = tuple(versions[number] for number in sorted(versions))
    ids = [version.version_id for version in ordered]
    if len(set(ids)) != len(ids):
        raise VersionError("versions: a workflowVersionId is given twice")
    if not any(version.active for version in ordered):
        raise VersionError("versions: at least one version must be active")
    return ordered


def latest_version(versions: tuple[WorkflowVersion, ...]) -> WorkflowVersion:
    """Return the active version with the highest number (versions are lowest first)."""
    return next(version for version in reversed(versions) if version.active)


def find_version(
    workflow_id: str, versions: tuple[WorkflowVersion, ...], number: int | None, version_id: str | None
) -> WorkflowVersion:
    """
    Return the version a request means: ``version_id`` if given, else ``number``, else the latest active.

    :raises NotFound: if the workflow has no such version; the message lists the ones it has.
    """
    if version_id is not None:
        match = [version for version in versions if version.version_id == version_id.lower()]
        asked = f"version id {version_id}"
    elif number is not None:
        match = [version for version in versions if version.number == number]
        asked = f"version {number}"
    else:
        return latest_version(versions)
    if not match:
        listed = ", ".join(f"{version.number} ({version.version_id})" for version in versions)
        raise NotFound(f"Workflow {workflow_id} has no {asked}; its versions are: {listed}")
    return match[0]


def parse_version_number(value: Any, name: str) -> int | None:
    """
    Read a version number from a query parameter or a body field.

    :param value: None, an int, or (from a query string) its digits.
    :param name: the field's name, for the error.
    :raises BadRequest: unless it is a whole number >= 1.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{name} must be a positive integer, got {value!r}")
    return value


def is_uuid(value: Any) -> bool:
    """Tell whether a value is a UUID in its usual text form (``8-4-4-4-12`` hex digits)."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
