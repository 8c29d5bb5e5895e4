"""workflows.py: the bundled and custom workflows files, and clear errors for bad ones."""

from __future__ import annotations

import json

import pytest

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, OpusEmulator, WorkflowConfigError
from tests.emulator.helpers import Api

pytestmark = pytest.mark.integration


def test_custom_workflows_file_with_defaults_and_emulator_section(tmp_path):
    path = tmp_path / "workflows.json"
    workflow = {
        "workflowId": "Custom0000000001",
        "name": "Custom",
        "jobPayloadSchema": {"workflow_input_abc": {"type": "str"}},
        "emulator": {"duration_seconds": 0, "results_data": {"answer": 42}},
    }
    path.write_text(json.dumps({"workflows": [workflow]}))
    with OpusEmulator(workflows=path, job_duration=30, api="legacy") as emulator:
        api = Api(emulator)
        details = api.get("/workflow/Custom0000000001").json()
        assert "emulator" not in details
        assert details["description"] == "Custom" and details["active"] is True
        assert details["jobPayloadSchema"] == {
            "workflow_input_abc": {
                "id": "abc",
                "variable_name": "workflow_input_abc",
                "display_name": "workflow_input_abc",
                "type": "str",
                "is_nullable": False,
                "description": "",
                "tags": [],
            }
        }
        assert api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}").status_code == 404
        job_id = api.run({"workflow_input_abc": {"value": "x", "type": "str"}}, workflow_id="Custom0000000001")
        # duration_seconds beats the emulator-wide 30 s.
        assert api.get(f"/job/{job_id}/results").json()["results"]["data"] == {"answer": 42, "inputs_received": 1}
    in_memory = OpusEmulator(workflows=[{"workflowId": "W", "name": "W", "jobPayloadSchema": {}}])
    assert list(in_memory.state.workflows) == ["W"]


GOOD_WORKFLOW = {"workflowId": "W1", "name": "W", "jobPayloadSchema": {}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{nope", "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        ("[]", 'expected an object with a "workflows" list'),
        ({"workflows": []}, "defines no workflows"),
        ({"workflows": [{"name": "W", "jobPayloadSchema": {}}]}, "workflow #0: workflowId is required"),
        ({"workflows": [{"workflowId": "W1", "name": "W"}]}, "workflow 'W1': jobPayloadSchema is required"),
        (
            {"workflows": [{**GOOD_WORKFLOW, "jobPayloadSchema": {"workflow_input_x": {"type": "string"}}}]},
            "workflow 'W1': jobPayloadSchema.workflow_input_x: type must be one of str, float",
        ),
        (
            {"workflows": [{**GOOD_WORKFLOW, "jobPayloadSchema": {"a": {"type": "str", "is_nullable": "no"}}}]},
            "workflow 'W1': jobPayloadSchema.a: is_nullable must be true or false",
        ),
        ({"workflows": [{**GOOD_WORKFLOW, "active": "yes"}]}, "workflow 'W1': active must be of type bool"),
        (
            {"workflows": [{**GOOD_WORKFLOW, "emulator": {"duration": 1}}]},
            "workflow 'W1': emulator: unknown key(s) duration",
        ),
        (
            {"workflows": [{**GOOD_WORKFLOW, "emulator": {"duration_seconds": -1}}]},
            "duration_seconds must be a non-negative number",
        ),
        ({"workflows": [GOOD_WORKFLOW, GOOD_WORKFLOW]}, "workflowId 'W1' is defined twice"),
        (
            {"workflows": [{**GOOD_WORKFLOW, "emulator": {"results_shape": "flat"}}]},
            "workflow 'W1': emulator: results_shape must be one of results, schema (or null)",
        ),
        *(
            (
                {"workflows": [{**GOOD_WORKFLOW, "emulator": {key: value}}]},
                f"emulator: {key} must be a non-negative integer",
            )
            for key in ("output_files", "output_file_bytes")
            for value in (-1, 1.5, "2", True)
        ),
        (
            {"workflows": [{**GOOD_WORKFLOW, "emulator": {"results_data": {"summary": "x", "outputFiles": []}}}]},
            "emulator: results_data must not use the output name(s) summary, outputFiles",
        ),
        (
            {"workflows": [{**GOOD_WORKFLOW, "emulator": {"results_data": {"inputs_received": 1}}}]},
            "emulator: results_data must not use the output name(s) inputs_received",
        ),
        (
            {"workflows": [{**GOOD_WORKFLOW, "jobResultsPayloadSchema": {"verdict": "PASS"}}]},
            "workflow 'W1': jobResultsPayloadSchema.verdict: must be an object",
        ),
        (
            {"workflows": [{**GOOD_WORKFLOW, "jobResultsPayloadSchema": {"verdict": {"display_name": 1}}}]},
            "workflow 'W1': jobResultsPayloadSchema.verdict: display_name must be a string",
        ),
        (
            {"workflows": [{**GOOD_WORKFLOW, "jobResultsPayloadSchema": {"verdict": {"variable_name": None}}}]},
            "workflow 'W1': jobResultsPayloadSchema.verdict: variable_name must be a string",
        ),
        (
            {"workflows": [{**GOOD_WORKFLOW, "jobResultsPayloadSchema": []}]},
            "jobResultsPayloadSchema must be of type dict",
        ),
    ],
)
def test_invalid_workflows_file_gives_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(WorkflowConfigError) as info:
        OpusEmulator(workflows=path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_workflows_file(tmp_path):
    with pytest.raises(WorkflowConfigError, match="cannot read workflows file"):
        OpusEmulator(workflows=tmp_path / "missing.json")
