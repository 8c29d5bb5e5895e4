"""
Workflows in the "v2" graph form that live integrations report (not yet in Opus's reference).

``GET /workflow/{id}`` of such a workflow answers with the graph itself and no ``jobPayloadSchema``:
``workflow_id``, ``name``, ``version``, ``active_status``, ``workflow_input_node_id``,
``workflow_output_node_id``, ``nodes`` (keyed by node id) and ``edges``. Its inputs are
``nodes[workflow_input_node_id].input_schema.schema``, keyed by variable name; an entry's type is
``allowed_types[0].type`` with ``type_definition`` beside it, and ``display_name`` and ``is_nullable``
may be missing. What the reports say goes wrong on execute (``json_string`` sent as ``str``, a list of
files without a camelCase ``typeDefinition``) does not get a 400: the job is accepted and its Input
node fails at once, which :func:`check_graph_instance` decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from airflow_provider_opus.emulator.errors import BadRequest

#: Input types a graph workflow may declare: the reference's eight, and the JSON text the v2 platform adds.
GRAPH_INPUT_TYPES = ("str", "float", "file", "bool", "array", "object", "date", "array_files", "json_string")
_REQUIRED_TEXT = ("workflow_id", "name", "workflow_input_node_id", "workflow_output_node_id")


class GraphError(ValueError):
    """A graph workflow is malformed; the message names the field."""


@dataclass(frozen=True)
class Graph:
    """
    What the emulator reads from a graph workflow.

    :param workflow_id: the ``workflow_id``.
    :param version: the graph's ``version``.
    :param input_node: the id of the Input node.
    :param nodes: the node ids in the order a run executes them: the Input node, then along the edges,
        the Output node last.
    :param inputs: the input schema by variable name, each with ``type`` (``allowed_types[0].type``),
        ``display_name`` (the variable name when missing), ``is_nullable`` (false when missing) and
        ``type_definition`` (or None).
    """

    workflow_id: str
    version: int
    input_node: str
    nodes: tuple[str, ...]
    inputs: dict[str, dict[str, Any]]


def is_graph(raw: Any) -> bool:
    """Tell whether a workflows file entry is in the graph form (it has ``nodes``, not ``jobPayloadSchema``)."""
    return isinstance(raw, dict) and "nodes" in raw and "jobPayloadSchema" not in raw


def parse_graph(raw: dict[str, Any], where: str) -> Graph:
    """
    Validate a graph workflow from a workflows file.

    :param raw: the entry, without its ``emulator`` section.
    :param where: the file and entry, for errors.
    :raises GraphError: naming the field that is missing or malformed.
    """
    for key in _REQUIRED_TEXT:
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise GraphError(f"{where}: {key} is required and must be a non-empty string")
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise GraphError(f"{where}: version must be an integer >= 1")
    nodes, edges = raw.get("nodes"), raw.get("edges", [])
    if not isinstance(nodes, dict) or not all(isinstance(node, dict) for node in nodes.values()):
        raise GraphError(f"{where}: nodes must be an object of node objects keyed by node id")
    if not isinstance(edges, list) or not all(
        isinstance(edge, dict) and edge.get("source") in nodes and edge.get("target") in nodes for edge in edges
    ):
        raise GraphError(f"{where}: edges must be a list of {{source, target}} naming nodes")
    input_node, output_node = raw["workflow_input_node_id"], raw["workflow_output_node_id"]
    for key, node in (("workflow_input_node_id", input_node), ("workflow_output_node_id", output_node)):
        if node not in nodes:
            raise GraphError(f"{where}: {key} {node!r} is not a key of nodes")
    schema = (nodes[input_node].get("input_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        raise GraphError(f"{where}: nodes.{input_node}.input_schema.schema must be an object")
    inputs = {
        name: _parse_entry(name, entry, f"{where}: nodes.{input_node}.input_schema.schema.{name}")
        for name, entry in schema.items()
    }
    order = _execution_order(list(nodes), edges, input_node, output_node)
    return Graph(raw["workflow_id"], version, input_node, order, inputs)


def _parse_entry(name: str, entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise GraphError(f"{where}: must be an object")
    allowed = entry.get("allowed_types")
    if not isinstance(allowed, list) or not allowed or not isinstance(allowed[0], dict):
        raise GraphError(f"{where}: allowed_types must be a non-empty list of {{type}} objects")
    if allowed[0].get("type") not in GRAPH_INPUT_TYPES:
        raise GraphError(f"{where}: allowed_types[0].type must be one of {', '.join(GRAPH_INPUT_TYPES)}")
    if not isinstance(entry.get("is_nullable", False), bool):
        raise GraphError(f"{where}: is_nullable must be true or false")
    definition = entry.get("type_definition")
    if definition is not None and not isinstance(definition, dict):
        raise GraphError(f"{where}: type_definition must be an object or null")
    return {
        "variable_name": name,
        "type": allowed[0]["type"],
        # What the provider falls back to when the graph gives neither.
        "display_name": entry.get("display_name") or name,
        "is_nullable": entry.get("is_nullable", False),
        "type_definition": definition,
    }


def _execution_order(nodes: list[str], edges: list[dict[str, Any]], first: str, last: str) -> tuple[str, ...]:
    """Order the nodes as a run reaches them: breadth first from the Input node, the Output node last."""
    order = [first]
    for node in order:  # grows while it is walked
        for edge in edges:
            target = edge["target"]
            if edge["source"] == node and target not in order and target != last:
                order.append(target)
    order += [node for node in nodes if node not in order and node != last]
    return (*order, last) if last != first else tuple(order)


def is_file_list(definition: dict[str, Any]) -> bool:
    """Tell whether an input is a list of files: type ``array`` whose type_definition allows ``file`` items."""
    return definition["type"] == "array" and "file" in _allowed_types(definition["type_definition"])


def check_graph_instance(instance: Any, inputs: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
    """
    Check a jobPayloadSchemaInstance the way the v2 platform does.

    Only its shape can make a 400: not an object, an unknown input, an item without ``value`` and ``type``.
    Everything the reports say is accepted and then fails the run comes back as the Input node's error.

    :param instance: ``{variable: {"value", "type", ...}}``.
    :param inputs: :attr:`Graph.inputs`.
    :return: ``({variable: value}, why the Input node fails or None)``.
    :raises BadRequest: for a malformed instance.
    """
    if not isinstance(instance, dict):
        raise BadRequest("jobPayloadSchemaInstance must be an object")
    values: dict[str, Any] = {}
    for name, item in instance.items():
        if name not in inputs:
            raise BadRequest(
                f"jobPayloadSchemaInstance has unknown input {name!r}; the workflow's inputs are: {', '.join(inputs)}"
            )
        if not isinstance(item, dict) or "value" not in item or "type" not in item:
            raise BadRequest(f'jobPayloadSchemaInstance.{name} must be an object {{"value": ..., "type": ...}}')
        values[name] = item["value"]
    for name, definition in inputs.items():
        item = instance.get(name)
        label = f"input '{definition['display_name']}' ({name})"
        if item is None or item["value"] is None:
            if definition["is_nullable"]:
                continue
            return values, f"required {label} was not provided"
        problem = _item_problem(item, definition)
        if problem:
            return values, f"{label} {problem}"
    return values, None


def _item_problem(item: dict[str, Any], definition: dict[str, Any]) -> str | None:
    """Say what is wrong with one submitted input, or None."""
    declared, sent, value = definition["type"], item["type"], item["value"]
    if not isinstance(sent, str):
        return f"has type {json.dumps(sent)}; the type must be the string {declared!r}"
    if is_file_list(definition):
        if sent != "array":
            return f"is a list of files: send type 'array' with a typeDefinition declaring file items, not {sent!r}"
        if "typeDefinition" not in item:
            if "type_definition" in item:
                return "has type_definition in snake_case; the API reads typeDefinition (camelCase)"
            return "has no typeDefinition, so its URLs would reach the agent as plain text, not files"
        wanted = _allowed_types(definition["type_definition"])
        if not isinstance(item["typeDefinition"], dict) or _allowed_types(item["typeDefinition"]) != wanted:
            return f"has a typeDefinition that does not declare {', '.join(sorted(wanted))} items as the schema does"
        if not isinstance(value, list) or not all(isinstance(url, str) and url for url in value):
            return "must be a list of file URLs"
        return None
    if sent != declared:
        return f"was sent as type {sent!r}; the workflow declares {declared!r}"
    if declared == "json_string":
        if not isinstance(value, str):
            return "is json_string: its value must be JSON text (a string), not a parsed value"
        try:
            json.loads(value)
        except ValueError as exc:
            return f"is json_string but its value is not valid JSON: {exc}"
    return None


def _allowed_types(definition: Any) -> frozenset[str]:
    """Read the item types a type definition allows (``allowed_types``, or ``allowedTypes`` as some send it)."""
    if not isinstance(definition, dict):
        return frozenset()
    allowed = definition.get("allowed_types", definition.get("allowedTypes"))
    if not isinstance(allowed, list):
        return frozenset()
    return frozenset(
        entry["type"] for entry in allowed if isinstance(entry, dict) and isinstance(entry.get("type"), str)
    )


def file_urls(values: dict[str, Any], inputs: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """
    Return ``(input, URL)`` for every file a graph instance names, to check they were uploaded.

    :param values: ``{variable: value}`` from :func:`check_graph_instance` (which passed them).
    :param inputs: :attr:`Graph.inputs`.
    """
    found = []
    for name, definition in inputs.items():
        value = values.get(name)
        if value is None:
            continue
        if definition["type"] == "file" and isinstance(value, str):
            found.append((name, value))
        elif is_file_list(definition) and isinstance(value, list):
            found.extend((name, url) for url in value if isinstance(url, str))
    return found
