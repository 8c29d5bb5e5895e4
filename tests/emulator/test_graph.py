"""graph.py: the bundled v2 graph workflow, what its Input node accepts, and how it fails when sent wrongly."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_opus.emulator import GRAPH_WORKFLOW_ID, OpusEmulator, WorkflowConfigError
from tests.emulator.helpers import FILE_ITEMS, GRAPH_INPUTS

pytestmark = pytest.mark.integration

INPUT_NODE = "node-input-7fq2"
NODES = [INPUT_NODE, "node-agent-3mw8", "node-writer-5hz1", "node-output-9kd1"]
TOPIC, PARAMETERS, SOURCES = "workflow_input_tp4k9d2wq", "workflow_input_pm8r3x6zn", "workflow_input_sr2v7b5kj"


def test_the_workflow_is_described_by_its_graph_without_a_payload_schema(capi):
    graph = capi.get(f"/workflow/{GRAPH_WORKFLOW_ID}").json()
    assert list(graph) == [
        "workflow_id",
        "name",
        "version",
        "active_status",
        "workflow_input_node_id",
        "workflow_output_node_id",
        "nodes",
        "edges",
    ]
    assert (graph["workflow_id"], graph["version"]) == (GRAPH_WORKFLOW_ID, 4)
    schema = graph["nodes"][graph["workflow_input_node_id"]]["input_schema"]["schema"]
    assert {name: entry["allowed_types"] for name, entry in schema.items()} == {
        TOPIC: [{"type": "str"}],
        PARAMETERS: [{"type": "json_string"}],
        SOURCES: [{"type": "array"}],
    }
    assert schema[SOURCES]["type_definition"] == FILE_ITEMS
    # One entry says nothing of its name or nullability: a client falls back to the variable name, required.
    assert "display_name" not in schema[SOURCES] and "is_nullable" not in schema[SOURCES]
    assert schema[TOPIC]["display_name"] == "Topic" and schema[PARAMETERS]["is_nullable"] is True
    assert capi.get(f"/workflow/{GRAPH_WORKFLOW_ID}?version=4").json() == graph
    assert capi.get(f"/workflow/{GRAPH_WORKFLOW_ID}?version=3").status_code == 404


def test_an_instance_sent_as_the_platform_wants_completes(capi):
    job_id = capi.initiate(GRAPH_WORKFLOW_ID)
    assert capi.execute(job_id, GRAPH_INPUTS).status_code == 201
    assert capi.audit(job_id)["nb_nodes"] == 4
    assert capi.wait_until_finished(job_id) == "COMPLETED"
    assert capi.audit(job_id)["executed_nodes"] == NODES
    outputs = capi.get(f"/job/{job_id}/results").json()["jobResultsPayloadSchema"]
    assert outputs["brief"] == {"value": "Three sources agree.", "type": "str", "displayName": "Brief"}


WRONG = [
    (
        {PARAMETERS: {"value": '{"depth": 2}', "type": "str"}},
        "input 'Parameters' (workflow_input_pm8r3x6zn) was sent as type 'str'; the workflow declares 'json_string'",
    ),
    ({PARAMETERS: {"value": {"depth": 2}, "type": "json_string"}}, "is json_string: its value must be JSON text"),
    ({PARAMETERS: {"value": "{depth: 2}", "type": "json_string"}}, "is json_string but its value is not valid JSON"),
    (
        {SOURCES: {"value": GRAPH_INPUTS[SOURCES]["value"], "type": "array"}},
        "input 'workflow_input_sr2v7b5kj' (workflow_input_sr2v7b5kj) has no typeDefinition",
    ),
    (
        {SOURCES: {"value": GRAPH_INPUTS[SOURCES]["value"], "type": "array", "type_definition": FILE_ITEMS}},
        "has type_definition in snake_case; the API reads typeDefinition (camelCase)",
    ),
    (
        {SOURCES: {**GRAPH_INPUTS[SOURCES], "typeDefinition": {"allowed_types": [{"type": "str"}]}}},
        "has a typeDefinition that does not declare file items as the schema does",
    ),
    ({SOURCES: {**GRAPH_INPUTS[SOURCES], "type": {"type": "array"}}}, 'has type {"type": "array"}; the type must be'),
    ({SOURCES: {**GRAPH_INPUTS[SOURCES], "type": "array_files"}}, "is a list of files: send type 'array'"),
    ({SOURCES: {**GRAPH_INPUTS[SOURCES], "value": "https://x/a.pdf"}}, "must be a list of file URLs"),
    ({SOURCES: None}, "required input 'workflow_input_sr2v7b5kj' (workflow_input_sr2v7b5kj) was not provided"),
    ({TOPIC: {"value": "Heat pumps", "type": "json_string"}}, "input 'Topic' (workflow_input_tp4k9d2wq) was sent"),
]


@pytest.mark.parametrize(("change", "error"), WRONG)
def test_an_input_sent_wrongly_is_accepted_then_fails_at_the_input_node(capi, current, change, error):
    current.configure(job_duration=30)  # the Input node fails at once, whatever the duration
    instance = {name: item for name, item in {**GRAPH_INPUTS, **change}.items() if item is not None}
    job_id = capi.initiate(GRAPH_WORKFLOW_ID)
    started = time.monotonic()
    assert capi.execute(job_id, instance).status_code == 201
    assert capi.wait_until_finished(job_id) == "FAILED"
    assert time.monotonic() - started < 2
    audit = capi.audit(job_id)
    assert audit["failed_nodes"] == NODES and audit["executed_nodes"] == []
    assert error in audit["audit"]["nodes_execution_data"][INPUT_NODE]["error"]
    assert audit["audit"]["nodes_execution_data"]["node-agent-3mw8"]["error"] == f"Upstream node {INPUT_NODE} failed"


def test_a_file_never_uploaded_fails_the_input_node(capi, current):
    never = capi.upload_url().json()["fileUrl"]
    job_id = capi.initiate(GRAPH_WORKFLOW_ID)
    capi.execute(job_id, {**GRAPH_INPUTS, SOURCES: {**GRAPH_INPUTS[SOURCES], "value": [never]}})
    assert capi.wait_until_finished(job_id) == "FAILED"
    error = capi.audit(job_id)["audit"]["nodes_execution_data"][INPUT_NODE]["error"]
    assert error == f"file {never} ({SOURCES}) was never uploaded"


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ([], "jobPayloadSchemaInstance must be an object"),
        ({"workflow_input_x": {"value": 1, "type": "str"}}, "unknown input 'workflow_input_x'"),
        ({TOPIC: "Heat pumps"}, f'jobPayloadSchemaInstance.{TOPIC} must be an object {{"value": ..., "type": ...}}'),
    ],
)
def test_a_malformed_instance_is_still_a_400(capi, current, instance, message):
    job_id = capi.initiate(GRAPH_WORKFLOW_ID)
    response = capi.execute(job_id, instance)
    assert response.status_code == 400 and message in str(response.json()["message"])
    assert current.jobs()[0]["status"] == "NOT STARTED"


GRAPH = {
    "workflow_id": "3f69dcbf-713a-493d-8d08-3fdb754825ab",
    "name": "G",
    "version": 1,
    "workflow_input_node_id": "in",
    "workflow_output_node_id": "out",
    "nodes": {"in": {"input_schema": {"schema": {"q": {"allowed_types": [{"type": "str"}]}}}}, "out": {}},
    "edges": [{"source": "in", "target": "out"}],
}


def test_a_graph_workflow_from_a_file_is_served_in_both_generations(tmp_path):
    path = tmp_path / "workflows.json"
    path.write_text(json.dumps({"workflows": [GRAPH]}))
    with OpusEmulator(workflows=path, api="legacy") as emulator:
        workflow = emulator.state.workflows[GRAPH["workflow_id"]]
        assert workflow.graph is not None and workflow.graph.nodes == ("in", "out")
        entry = {"variable_name": "q", "type": "str", "display_name": "q", "is_nullable": False}
        assert workflow.inputs == {"q": {**entry, "type_definition": None}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "1"}, "version must be an integer >= 1"),
        ({"workflow_input_node_id": "nope"}, "workflow_input_node_id 'nope' is not a key of nodes"),
        ({"edges": [{"source": "in", "target": "x"}]}, "edges must be a list of {source, target} naming nodes"),
        ({"nodes": {"in": {}, "out": {}}}, "nodes.in.input_schema.schema must be an object"),
        (
            {"nodes": {"in": {"input_schema": {"schema": {"q": {"allowed_types": [{"type": "text"}]}}}}, "out": {}}},
            "input_schema.schema.q: allowed_types[0].type must be one of str, float",
        ),
        ({"nodes": {"in": {"input_schema": {"schema": {"q": {}}}}, "out": {}}}, "allowed_types must be a non-empty"),
        ({"name": ""}, "name is required"),
    ],
)
def test_a_bad_graph_is_a_clear_error(tmp_path, change, message):
    path = tmp_path / "workflows.json"
    path.write_text(json.dumps({"workflows": [{**GRAPH, **change}]}))
    with pytest.raises(WorkflowConfigError) as raised:
        OpusEmulator(workflows=path)
    assert f"workflow '{GRAPH['workflow_id']}': " in str(raised.value) and message in str(raised.value)
