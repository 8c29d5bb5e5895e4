"""Workflow definitions served by the emulator: loading, validation and defaults.

A workflows file is ``{"workflows": [<workflow>, ...]}`` where each workflow is the object that
``GET /workflow/{id}`` returns, optionally with an ``"emulator"`` section that tunes how its jobs run.
Only ``workflowId``, ``name`` and ``jobPayloadSchema`` are required; the other detail fields get defaults.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

INPUT_TYPES = ("str", "float", "file", "bool", "array", "object", "date", "array_files")
FILE_INPUT_TYPES = frozenset({"file", "array_files"})
DEFAULT_RESULTS_DATA: dict[str, Any] = {
    "score": 92,
    "verdict": "PASS",
    "comments": "All documents validated successfully.",
}

WorkflowSource = str | os.PathLike[str] | list[dict[str, Any]] | None

_BUNDLED_FILE = "workflows.json"
_INPUT_PREFIX = "workflow_input_"
_EMULATOR_KEYS = frozenset({"duration_seconds", "results_data", "status_sequence"})
# Optional detail fields and the JSON type each must have when given.
_DETAIL_TYPES: dict[str, tuple[type, ...]] = {
    "createdAt": (str,),
    "description": (str,),
    "industry": (str,),
    "active": (bool,),
    "workflowBlueprint": (dict,),
    "executionEstimation": (dict,),
    "workflowImage": (str,),
    "jobResultsPayloadSchema": (dict,),
}
_DEFAULT_RESULTS_SCHEMA: dict[str, Any] = {
    "summary": {
        "variable_name": "summary",
        "display_name": "Summary",
        "type": "str",
        "description": "One-line outcome of the job.",
    },
    "outputFiles": {
        "variable_name": "outputFiles",
        "display_name": "Output Files",
        "type": "array_files",
        "description": "URLs of the generated documents.",
    },
    "data": {
        "variable_name": "data",
        "display_name": "Data",
        "type": "object",
        "description": "Structured results.",
    },
}


class WorkflowConfigError(ValueError):
    """A workflow definition is invalid; the message names the source, the workflow and the field."""


@dataclass(frozen=True)
class Workflow:
    """
    One workflow the emulator knows.

    :param details: the object ``GET /workflow/{id}`` returns (defaults filled, no emulator section).
    :param duration_seconds: job duration for this workflow, or None to use the emulator-wide one.
    :param results_data: the ``data`` object of a completed job's results.
    :param status_sequence: the statuses its jobs report over their run, the last one final; None for the
        default course (``IN PROGRESS``, then ``COMPLETED`` or ``FAILED``).
    """

    details: dict[str, Any]
    duration_seconds: float | None
    results_data: dict[str, Any]
    status_sequence: tuple[str, ...] | None = None

    @property
    def workflow_id(self) -> str:
        """The workflow's id."""
        return str(self.details["workflowId"])

    @property
    def inputs(self) -> dict[str, dict[str, Any]]:
        """The jobPayloadSchema: input variable name to its definition."""
        schema: dict[str, dict[str, Any]] = self.details["jobPayloadSchema"]
        return schema


def check_status_sequence(statuses: Any, name: str = "status sequence") -> tuple[str, ...]:
    """
    Validate a job status sequence: a non-empty list of non-empty strings, the last one the final status.

    The strings are kept exactly as given (case and surrounding spaces included), since they are what the
    jobs will report.

    :param statuses: the value to check.
    :param name: what to call the value in error messages.
    :return: the statuses as a tuple.
    :raises ValueError: naming the problem, e.g. ``status sequence[2] must be a non-empty string, got ''``.
    """
    if not isinstance(statuses, (list, tuple)):
        raise ValueError(f"{name} must be a list of status strings, got {type(statuses).__name__}")
    if not statuses:
        raise ValueError(f"{name} must not be empty; the last status is the job's final one")
    for index, status in enumerate(statuses):
        if not isinstance(status, str) or not status.strip():
            raise ValueError(f"{name}[{index}] must be a non-empty string, got {status!r}")
    return tuple(statuses)


def load_workflows(source: WorkflowSource = None) -> dict[str, Workflow]:
    """
    Load and validate workflow definitions.

    :param source: None for the bundled workflows, a path to a workflows JSON file, or a list of
        workflow dicts.
    :return: workflows by workflowId, in definition order.
    :raises WorkflowConfigError: if the file cannot be read or a definition is invalid.
    """
    if source is None:
        text = resources.files(__package__).joinpath(_BUNDLED_FILE).read_text(encoding="utf-8")
        return _parse_document(text, origin=f"bundled {_BUNDLED_FILE}")
    if isinstance(source, list):
        return _parse_workflows(source, origin="workflows list")
    path = os.fspath(source)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise WorkflowConfigError(f"{path}: cannot read workflows file: {exc.strerror}") from exc
    return _parse_document(text, origin=path)


def _parse_document(text: str, origin: str) -> dict[str, Workflow]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowConfigError(
            f"{origin}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("workflows"), list):
        raise WorkflowConfigError(f'{origin}: expected an object with a "workflows" list')
    return _parse_workflows(document["workflows"], origin)


def _parse_workflows(raw_workflows: list[Any], origin: str) -> dict[str, Workflow]:
    if not raw_workflows:
        raise WorkflowConfigError(f"{origin}: defines no workflows")
    workflows: dict[str, Workflow] = {}
    for index, raw in enumerate(raw_workflows):
        workflow = _parse_workflow(raw, origin, index)
        if workflow.workflow_id in workflows:
            raise WorkflowConfigError(f"{origin}: workflowId {workflow.workflow_id!r} is defined twice")
        workflows[workflow.workflow_id] = workflow
    return workflows


def _parse_workflow(raw: Any, origin: str, index: int) -> Workflow:
    where = f"{origin}: workflow #{index}"
    if not isinstance(raw, dict):
        raise WorkflowConfigError(f"{where}: must be an object")
    for key in ("workflowId", "name"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise WorkflowConfigError(f"{where}: {key} is required and must be a non-empty string")
    where = f"{origin}: workflow {raw['workflowId']!r}"
    for key, types in _DETAIL_TYPES.items():
        if key in raw and not isinstance(raw[key], types):
            raise WorkflowConfigError(f"{where}: {key} must be of type {types[0].__name__}")
    schema = raw.get("jobPayloadSchema")
    if not isinstance(schema, dict):
        raise WorkflowConfigError(f"{where}: jobPayloadSchema is required and must be an object")

    details = _default_details(raw["workflowId"], raw["name"], raw.get("description"), raw.get("industry"))
    details.update({key: copy.deepcopy(value) for key, value in raw.items() if key != "emulator"})
    details["jobPayloadSchema"] = {
        name: _parse_input(name, entry, f"{where}: jobPayloadSchema.{name}") for name, entry in schema.items()
    }
    section = raw.get("emulator", {})
    duration, results_data = _parse_emulator_section(section, f"{where}: emulator")
    sequence = section.get("status_sequence")
    if sequence is not None:
        try:
            sequence = check_status_sequence(sequence, "status_sequence")
        except ValueError as exc:
            raise WorkflowConfigError(f"{where}: emulator: {exc}") from None
    return Workflow(details=details, duration_seconds=duration, results_data=results_data, status_sequence=sequence)


def _parse_input(name: str, entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise WorkflowConfigError(f"{where}: must be an object")
    if entry.get("type") not in INPUT_TYPES:
        raise WorkflowConfigError(f"{where}: type must be one of {', '.join(INPUT_TYPES)}")
    if entry.get("variable_name", name) != name:
        raise WorkflowConfigError(f"{where}: variable_name must equal the key {name!r}")
    if not isinstance(entry.get("is_nullable", False), bool):
        raise WorkflowConfigError(f"{where}: is_nullable must be true or false")
    if not isinstance(entry.get("tags", []), list):
        raise WorkflowConfigError(f"{where}: tags must be a list")
    return {
        "id": name.removeprefix(_INPUT_PREFIX),
        "variable_name": name,
        "display_name": name,
        "is_nullable": False,
        "description": "",
        "tags": [],
        **copy.deepcopy(entry),
    }


def _parse_emulator_section(section: Any, where: str) -> tuple[float | None, dict[str, Any]]:
    if not isinstance(section, dict):
        raise WorkflowConfigError(f"{where}: must be an object")
    unknown = sorted(set(section) - _EMULATOR_KEYS)
    if unknown:
        raise WorkflowConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_EMULATOR_KEYS))}"
        )
    duration = section.get("duration_seconds")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0):
        raise WorkflowConfigError(f"{where}: duration_seconds must be a non-negative number")
    results_data = section.get("results_data", DEFAULT_RESULTS_DATA)
    if not isinstance(results_data, dict):
        raise WorkflowConfigError(f"{where}: results_data must be an object")
    return (None if duration is None else float(duration)), copy.deepcopy(results_data)


def _default_details(workflow_id: str, name: str, description: str | None, industry: str | None) -> dict[str, Any]:
    description = description or name
    industry = industry or "general"
    io_section = {"description": description, "inputItems": [], "outputItems": []}
    return {
        "createdAt": "2025-01-01T00:00:00.000Z",
        "workflowId": workflow_id,
        "name": name,
        "description": description,
        "industry": industry,
        "active": True,
        "workflowBlueprint": {
            "id": f"blueprint-{workflow_id}",
            "name": f"{name} Blueprint",
            "objective": description,
            "description": description,
            "input": copy.deepcopy(io_section),
            "output": copy.deepcopy(io_section),
            "process": copy.deepcopy(io_section),
            "requiredSteps": [],
            "workflowClassificationTags": [],
            "dataSets": [],
            "embeddingText": description,
            "generationMarker": {},
            "industry": industry,
            "country": "",
            "storageMarker": {},
        },
        "executionEstimation": {
            "humanCost": 100.0,
            "humanPrice": 150.0,
            "opusCost": 50.0,
            "opusPrice": 75.0,
            "humanTime": 2.5,
            "opusTime": 1.2,
            "accuracy": 95,
        },
        "workflowImage": "",
        "jobPayloadSchema": {},
        "jobResultsPayloadSchema": copy.deepcopy(_DEFAULT_RESULTS_SCHEMA),
    }
