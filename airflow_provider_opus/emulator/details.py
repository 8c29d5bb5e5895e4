"""
What a workflow's details hold when its definition leaves them out.

That is: the documented detail fields, and the jobResultsPayloadSchema that names every output of a
completed job.
"""

from __future__ import annotations

import copy
from typing import Any

_FIXED_OUTPUT_SCHEMA: dict[str, Any] = {
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
}
# Reported after the results data, as in the results shape's data object.
_INPUTS_RECEIVED_SCHEMA: dict[str, Any] = {
    "variable_name": "inputs_received",
    "display_name": "Inputs Received",
    "type": "float",
    "description": "How many inputs the job was given.",
}
# The output type a results_data value is declared with; bool before int, as a bool is an int.
_OUTPUT_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "bool"),
    ((int, float), "float"),
    (str, "str"),
    (list, "array"),
)


def output_schema(results_data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """
    Build the jobResultsPayloadSchema that names every output of a completed job.

    The entries, shaped like the jobPayloadSchema's (``variable_name``, ``display_name``, ``type``,
    ``description``), are ``summary``, ``outputFiles``, one per ``results_data`` key, and ``inputs_received``
    (the number of inputs the job was given, which the emulator adds to the data). A key's display
    name is the key with underscores as spaces and each word capitalised (``risk_level`` is "Risk Level"),
    and its type follows its value: ``str``, ``float`` (any number), ``bool``, ``array`` or ``object``
    (an object or null).

    :param results_data: the workflow's results data.
    :return: the schema, by variable name.
    """
    schema = copy.deepcopy(_FIXED_OUTPUT_SCHEMA)
    for name, value in results_data.items():
        display_name = " ".join(word[:1].upper() + word[1:] for word in name.split("_") if word) or name
        schema[name] = {
            "variable_name": name,
            "display_name": display_name,
            "type": next((label for types, label in _OUTPUT_TYPES if isinstance(value, types)), "object"),
            "description": f"The {display_name.lower()} the job returned.",
        }
    schema["inputs_received"] = dict(_INPUTS_RECEIVED_SCHEMA)
    return schema


def default_details(workflow_id: str, name: str, description: str | None, industry: str | None) -> dict[str, Any]:
    """
    Return the details of a workflow whose definition gives only the required fields.

    :param workflow_id: its id.
    :param name: its name.
    :param description: its description; None for the name.
    :param industry: its industry; None for ``general``.
    """
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
        # Filled in from the emulator section's results_data unless the workflow gives its own.
        "jobResultsPayloadSchema": {},
    }
