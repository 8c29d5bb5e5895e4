"""workflows.py: version pins, the initiate body, and a workflow's inputs from either generation's details."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_opus.exceptions import OpusInvalidArgumentError, OpusResponseError, OpusWorkflowSchemaError
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


ENTRY = {"id": "a1", "variable_name": "workflow_input_a1", "display_name": "Invoice", "type": "file"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        # An entry that is null or a string raised a raw AttributeError.
        (None, "input 'workflow_input_a1' of the workflow's schema is null, expected an object"),
        ("Invoice", "input 'workflow_input_a1' of the workflow's schema is 'Invoice', expected an object"),
        # is_nullable "false" was read as nullable: a required input went missing and the job was billed.
        ({**ENTRY, "is_nullable": "false"}, "has is_nullable 'false', expected true or false"),
        ({**ENTRY, "is_nullable": 0}, "has is_nullable int 0, expected true or false"),
        # A tag value "PDF" was read as the letters D, F and P.
        (
            {**ENTRY, "tags": [{"variable_name": "allowed_file_types", "value": "PDF"}]},
            r"has an allowed_file_types tag of value 'PDF', expected a list such as \['PDF'\]",
        ),
        ({**ENTRY, "tags": [{"variable_name": "allowed_file_types", "value": [1]}]}, "tag of value list \\[1\\]"),
        ({**ENTRY, "tags": "PDF"}, "has tags 'PDF', expected a list"),
        ({**ENTRY, "tags": ["PDF"]}, r"has tags\[0\] 'PDF', expected an object"),
        ({**ENTRY, "type": None}, "has type null, expected a type name"),
        ({**{k: v for k, v in ENTRY.items() if k != "type"}}, "has type null, expected a type name"),
        ({**ENTRY, "display_name": ["Invoice"]}, "has display_name list \\['Invoice'\\], expected a string"),
        ({**ENTRY, "id": {"a": 1}}, "has id dict"),
    ],
)
def test_a_schema_entry_the_provider_cannot_read_is_a_clear_error_naming_it(entry, message):
    details = {"jobPayloadSchema": {"workflow_input_a1": entry}}
    for read in (
        lambda: job_payload_schema_from(details, "/workflow/wf1"),
        lambda: JobPayloadSchema(details["jobPayloadSchema"], "wf1"),
    ):
        with pytest.raises(OpusWorkflowSchemaError, match=message) as info:
            read()
        assert "GET /workflow/wf1" in str(info.value)
        assert isinstance(info.value, AirflowFailException)  # the same schema on a retry: fail at once


def test_a_v2_graph_entry_of_the_wrong_type_is_the_same_error():
    inputs = {"contract_text": {"allowed_types": [{"type": "str"}], "is_nullable": "false"}}
    with pytest.raises(OpusWorkflowSchemaError, match=r"input 'contract_text' .* has is_nullable 'false'"):
        job_payload_schema_from(graph(inputs), "/workflow/x")
    with pytest.raises(OpusWorkflowSchemaError, match="input 'a' of the workflow graph is NoneType None"):
        job_payload_schema_from(graph({"a": None}), "/workflow/x")


def test_an_entry_of_the_expected_types_reads_as_before():
    entry = {**ENTRY, "is_nullable": None, "tags": [{"variable_name": "allowed_file_types", "value": ["PDF"]}, {}]}
    (invoice,) = JobPayloadSchema({"workflow_input_a1": entry}).inputs
    assert invoice.allowed_file_types == {"pdf"} and invoice.is_nullable is False and invoice.id == "a1"
    assert JobPayloadSchema({"x": {"type": "str", "id": 7}}).inputs[0].id == "7"
