"""workflows.py: version pins, the initiate body, and a workflow's inputs from either generation's details."""

from __future__ import annotations

import pytest

from airflow_provider_opus.exceptions import OpusInvalidArgumentError, OpusResponseError
from airflow_provider_opus.payload import JobPayloadSchema
from airflow_provider_opus.workflows import WorkflowVersion, initiate_job_body, is_uuid, job_payload_schema_from

VERSION_ID = "3f69dcbf-713a-493d-8d08-3fdb754825ab"
FILE_ITEM = {"id": "file", "variable_name": "file", "allowed_types": [{"type": "file"}]}


def graph(inputs: dict, schema_field: str = "input_schema") -> dict:
    """Return v2 workflow details: a graph whose input node declares ``inputs``."""
    return {
        "workflow_id": VERSION_ID,
        "name": "Contract review",
        "version": 3,
        "active_status": True,
        "workflow_input_node_id": "in",
        "workflow_output_node_id": "out",
        "nodes": {"in": {schema_field: {"schema": inputs}}, "out": {}},
        "edges": [],
    }


V2_INPUTS = {
    "contract_text": {"allowed_types": [{"type": "str"}], "display_name": "Contract Text", "is_nullable": False},
    "rules": {"allowed_types": [{"type": "json_string"}], "display_name": "Rules"},
    "attachments": {"allowed_types": [{"type": "array"}], "type_definition": FILE_ITEM, "is_nullable": True},
}


@pytest.mark.parametrize(
    ("value", "number", "version_id"),
    [(1, 1, None), ("12", 12, None), (" 7 ", 7, None), (VERSION_ID, None, VERSION_ID)],
)
def test_a_version_pin_is_a_number_or_a_uuid(value, number, version_id):
    pin = WorkflowVersion.parse(value)
    assert (pin.number, pin.version_id) == (number, version_id)


def test_a_version_pin_names_the_query_and_the_initiate_fields():
    assert WorkflowVersion(number=2).query == {"version": "2"}
    assert WorkflowVersion(number=2).initiate_fields == {"workflowVersionNumber": 2}
    assert WorkflowVersion(version_id=VERSION_ID).query == {"workflowVersionId": VERSION_ID}
    assert WorkflowVersion(version_id=VERSION_ID).initiate_fields == {"workflowVersionId": VERSION_ID}
    assert WorkflowVersion.parse(None) is None
    assert WorkflowVersion.parse("  ") is None


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "v2", "latest", "0", [1]])
def test_anything_else_is_no_version(value):
    with pytest.raises(OpusInvalidArgumentError, match="workflow_version must be a version number"):
        WorkflowVersion.parse(value)


def test_uuids_and_short_ids():
    assert is_uuid(VERSION_ID)
    assert not is_uuid("B9uGJfZ3CFwOdMKH")


def test_the_initiate_body_holds_only_what_was_given():
    assert initiate_job_body("wf", "t", "d") == {"workflowId": "wf", "title": "t", "description": "d"}


def test_the_older_schema_is_read_as_it_is():
    schema = {"workflow_input_a": {"type": "str"}}
    assert job_payload_schema_from({"jobPayloadSchema": schema}, "/workflow/x") is schema


def test_a_v2_graph_is_read_into_schema_entries():
    schema = job_payload_schema_from(graph(V2_INPUTS), "/workflow/x")
    assert schema == {
        "contract_text": {
            "display_name": "Contract Text",
            "is_nullable": False,
            "variable_name": "contract_text",
            "type": "str",
            "type_definition": None,
        },
        "rules": {"display_name": "Rules", "variable_name": "rules", "type": "json_string", "type_definition": None},
        "attachments": {
            "is_nullable": True,
            "variable_name": "attachments",
            "type": "array",
            "type_definition": FILE_ITEM,
        },
    }


def test_a_v2_graph_builds_a_payload_by_display_name_with_json_text_and_a_file_list():
    schema = JobPayloadSchema(job_payload_schema_from(graph(V2_INPUTS), "/workflow/x"))
    inputs = {"Contract Text": "x", "Rules": {"max": 3}, "attachments": ["/data/a.pdf"]}
    assert schema.local_file_paths(inputs) == ["/data/a.pdf"]
    payload = schema.build(inputs, uploaded={"/data/a.pdf": "https://files.opus.com/a.pdf"})
    assert payload == {
        "contract_text": {"value": "x", "type": "str", "displayName": "Contract Text"},
        "rules": {"value": '{"max": 3}', "type": "json_string", "displayName": "Rules"},
        "attachments": {
            "value": ["https://files.opus.com/a.pdf"],
            "type": "array",
            "displayName": "attachments",
            "typeDefinition": FILE_ITEM,
        },
    }


def test_a_v2_entry_without_is_nullable_is_required():
    schema = JobPayloadSchema(job_payload_schema_from(graph(V2_INPUTS), "/workflow/x"))
    with pytest.raises(Exception, match="'Rules' is required"):
        schema.build({"Contract Text": "x"})


def test_the_output_schema_of_the_input_node_is_a_fallback():
    schema = job_payload_schema_from(graph({"a": {"allowed_types": [{"type": "str"}]}}, "output_schema"), "/p")
    assert schema["a"]["type"] == "str"


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"name": "x", "nodes": {}}, "neither jobPayloadSchema nor a workflow graph .* \\(keys: name, nodes\\)"),
        ({}, "keys: none"),
        ({"jobPayloadSchema": []}, "jobPayloadSchema is list \\[\\], expected an object"),
        ({"workflow_input_node_id": "in", "nodes": {}}, "no input node 'in'"),
        ({"workflow_input_node_id": "in", "nodes": {"in": {}}}, "has no input_schema.schema"),
        (graph({"a": None}), "input 'a' of the workflow graph is NoneType None, expected an object"),
        (graph({"a": {"allowed_types": []}}), "input 'a' of the workflow graph names no type"),
    ],
)
def test_details_of_neither_shape_are_a_response_error(details, message):
    with pytest.raises(OpusResponseError, match=message):
        job_payload_schema_from(details, "/workflow/x")
