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

from airflow_provider_opus.emulator.details import default_details, output_schema
from airflow_provider_opus.emulator.generations import API_GENERATIONS
from airflow_provider_opus.emulator.graph import Graph, GraphError, is_graph, parse_graph
from airflow_provider_opus.emulator.output_files import DEFAULT_OUTPUT_FILE_BYTES
from airflow_provider_opus.emulator.results import current_output_schema
from airflow_provider_opus.emulator.versions import (
    VersionError,
    WorkflowVersion,
    default_version,
    find_version,
    latest_version,
    parse_versions,
)

INPUT_TYPES = ("str", "float", "file", "bool", "array", "object", "date", "array_files")
FILE_INPUT_TYPES = frozenset({"file", "array_files"})
DEFAULT_RESULTS_DATA: dict[str, Any] = {
    "score": 92,
    "verdict": "PASS",
    "comments": "All documents validated successfully.",
}

#: How ``GET /job/{id}/results`` carries a job's outputs, the two shapes the API reference documents:
#: ``{"results": {"summary", "outputFiles", "data"}}`` or ``{"jobResultsPayloadSchema": {<variable>: {..., "value"}}}``.
RESULTS_SHAPES = ("results", "schema")
#: The outputs every completed job has besides its ``results_data``; no ``results_data`` key may take these names.
FIXED_OUTPUTS = ("summary", "outputFiles", "inputs_received")

WorkflowSource = str | os.PathLike[str] | list[dict[str, Any]] | None

_BUNDLED_FILE = "workflows.json"
_INPUT_PREFIX = "workflow_input_"
_EMULATOR_KEYS = frozenset(
    {"duration_seconds", "results_data", "status_sequence", "results_shape", "output_files", "output_file_bytes", "api"}
)
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
_OUTPUT_TEXT_FIELDS = ("variable_name", "display_name", "type", "description")


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
    :param results_shape: one of :data:`RESULTS_SHAPES`, or None to use the emulator-wide one.
    :param output_files: how many output files a completed job has.
    :param output_file_bytes: the size of each output file.
    :param versions: its versions, lowest number first (one, number 1, unless the file lists them).
    :param graph: what the emulator reads from a workflow in the v2 graph form; None for the documented form.
    :param api: the only API generation that serves it; None for both.
    """

    details: dict[str, Any]
    duration_seconds: float | None
    results_data: dict[str, Any]
    status_sequence: tuple[str, ...] | None = None
    results_shape: str | None = None
    output_files: int = 1
    output_file_bytes: int = DEFAULT_OUTPUT_FILE_BYTES
    versions: tuple[WorkflowVersion, ...] = ()
    graph: Graph | None = None
    api: str | None = None

    @property
    def workflow_id(self) -> str:
        """The workflow's id."""
        return self.graph.workflow_id if self.graph is not None else str(self.details["workflowId"])

    @property
    def name(self) -> str:
        """The workflow's name."""
        return str(self.details["name"])

    @property
    def inputs(self) -> dict[str, dict[str, Any]]:
        """The inputs of its latest active version: input variable name to its definition."""
        return self.latest.inputs

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        """The jobResultsPayloadSchema: output variable name to its definition."""
        if self.graph is not None:
            return output_schema(self.results_data)
        schema: dict[str, dict[str, Any]] = self.details["jobResultsPayloadSchema"]
        return schema

    @property
    def latest(self) -> WorkflowVersion:
        """Its latest active version, which a request that names none means."""
        return latest_version(self.versions)

    def version(self, number: int | None = None, version_id: str | None = None) -> WorkflowVersion:
        """
        Return one of its versions: by id if given (it wins), else by number, else the latest active one.

        :raises NotFound: if it has no such version.
        """
        return find_version(self.workflow_id, self.versions, number, version_id)

    def served_in(self, api: str) -> bool:
        """Tell whether the given API generation serves this workflow."""
        return self.api is None or self.api == api

    def details_of(self, version: WorkflowVersion) -> dict[str, Any]:
        """
        Return what the current generation's ``GET /workflow/{id}`` answers for one version.

        A graph workflow answers with its graph; any other with its details, that version's
        ``jobPayloadSchema``, the version's ``version`` and ``workflowVersionId``, and a
        ``jobResultsPayloadSchema`` naming the outputs current results carry (one ``file`` output per file).
        """
        if self.graph is not None:
            return copy.deepcopy(self.details)
        details = copy.deepcopy(self.details)
        details["jobPayloadSchema"] = copy.deepcopy(version.inputs)
        details["jobResultsPayloadSchema"] = current_output_schema(self)
        details["version"], details["workflowVersionId"] = version.number, version.version_id
        return details


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
    if is_graph(raw):
        return _parse_graph_workflow(raw, origin, index)
    for key in ("workflowId", "name"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise WorkflowConfigError(f"{where}: {key} is required and must be a non-empty string")
    where = f"{origin}: workflow {raw['workflowId']!r}"
    for key, types in _DETAIL_TYPES.items():
        if key in raw and not isinstance(raw[key], types):
            raise WorkflowConfigError(f"{where}: {key} must be of type {types[0].__name__}")
    schema = raw.get("jobPayloadSchema")
    if "versions" in raw:
        if schema is not None:
            raise WorkflowConfigError(f"{where}: give jobPayloadSchema or versions (each with its own), not both")
        try:
            versions = parse_versions(
                raw["versions"], raw["workflowId"], lambda name, entry, at: _parse_input(name, entry, f"{where}: {at}")
            )
        except VersionError as exc:
            raise WorkflowConfigError(f"{where}: {exc}") from None
        schema = latest_version(versions).inputs
    elif not isinstance(schema, dict):
        raise WorkflowConfigError(f"{where}: jobPayloadSchema is required and must be an object")
    else:
        schema = {
            name: _parse_input(name, entry, f"{where}: jobPayloadSchema.{name}") for name, entry in schema.items()
        }
        versions = (default_version(raw["workflowId"], schema),)

    details = default_details(raw["workflowId"], raw["name"], raw.get("description"), raw.get("industry"))
    details.update({key: copy.deepcopy(value) for key, value in raw.items() if key not in ("emulator", "versions")})
    details["jobPayloadSchema"] = copy.deepcopy(schema)
    settings = _parse_emulator_section(raw.get("emulator", {}), f"{where}: emulator")
    if "jobResultsPayloadSchema" in raw:
        _check_output_schema(raw["jobResultsPayloadSchema"], f"{where}: jobResultsPayloadSchema")
    else:
        details["jobResultsPayloadSchema"] = output_schema(settings["results_data"])
    return Workflow(details=details, versions=versions, **settings)


def _parse_graph_workflow(raw: dict[str, Any], origin: str, index: int) -> Workflow:
    """Read a workflow in the v2 graph form: its graph is what ``GET /workflow/{id}`` answers."""
    where = f"{origin}: workflow {raw.get('workflow_id', f'#{index}')!r}"
    details = {key: copy.deepcopy(value) for key, value in raw.items() if key != "emulator"}
    try:
        graph = parse_graph(details, where)
    except GraphError as exc:
        raise WorkflowConfigError(str(exc)) from None
    settings = _parse_emulator_section(raw.get("emulator", {}), f"{where}: emulator")
    version = default_version(graph.workflow_id, graph.inputs, graph.version)
    return Workflow(details=details, versions=(version,), graph=graph, **settings)


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


def _check_output_schema(schema: dict[str, Any], where: str) -> None:
    for name, entry in schema.items():
        if not isinstance(entry, dict):
            raise WorkflowConfigError(f"{where}.{name}: must be an object")
        for key in _OUTPUT_TEXT_FIELDS:
            if key in entry and not isinstance(entry[key], str):
                raise WorkflowConfigError(f"{where}.{name}: {key} must be a string")


def _parse_emulator_section(section: Any, where: str) -> dict[str, Any]:
    """Validate a workflow's emulator section; return the :class:`Workflow` fields it sets."""
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
    reserved = [name for name in FIXED_OUTPUTS if name in results_data]
    if reserved:
        raise WorkflowConfigError(f"{where}: results_data must not use the output name(s) {', '.join(reserved)}")
    sequence = section.get("status_sequence")
    if sequence is not None:
        try:
            sequence = check_status_sequence(sequence, "status_sequence")
        except ValueError as exc:
            raise WorkflowConfigError(f"{where}: {exc}") from None
    shape = section.get("results_shape")
    if shape is not None and shape not in RESULTS_SHAPES:
        raise WorkflowConfigError(f"{where}: results_shape must be one of {', '.join(RESULTS_SHAPES)} (or null)")
    api = section.get("api")
    if api is not None and api not in API_GENERATIONS:
        raise WorkflowConfigError(f"{where}: api must be one of {', '.join(API_GENERATIONS)} (or null for both)")
    counts = {"output_files": 1, "output_file_bytes": DEFAULT_OUTPUT_FILE_BYTES}
    for key in counts:
        value = section.get(key, counts[key])
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise WorkflowConfigError(f"{where}: {key} must be a non-negative integer")
        counts[key] = value
    return {
        "duration_seconds": None if duration is None else float(duration),
        "results_data": copy.deepcopy(results_data),
        "status_sequence": sequence,
        "results_shape": shape,
        "api": api,
        **counts,
    }
