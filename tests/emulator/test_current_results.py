"""current_state.py and audit.py: the current generation's results (the payload schema only) and node-level audit."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, REPORT_WORKFLOW_ID
from tests.emulator.helpers import ISO_Z, REQUIRED_INPUTS, TIMEOUT, wait_for

pytestmark = pytest.mark.integration

NODES = ["workflow_input", "workflow_agent", "workflow_output"]
AUDIT_KEYS = {
    "nb_nodes",
    "executed_nodes",
    "nb_executed_nodes",
    "running_node",
    "next_node_to_execute",
    "remaining_nodes_to_execute",
    "failed_nodes",
    "nb_failed_nodes",
    "audit",
}


def test_results_are_the_payload_schema_only_with_display_names_and_file_outputs(capi, current):
    job_id = capi.run(REQUIRED_INPUTS)
    assert capi.get(f"/job/{job_id}/results").json() == {"jobResultsPayloadSchema": {}}  # not COMPLETED yet
    assert capi.wait_until_finished(job_id) == "COMPLETED"
    results = capi.get(f"/job/{job_id}/results").json()
    assert list(results) == ["jobResultsPayloadSchema"]
    outputs = results["jobResultsPayloadSchema"]
    file_url = f"{current.storage_url}/media/private/generated/output_{job_id}.pdf"
    assert outputs == {
        "summary": {"value": "Job executed successfully.", "type": "str", "displayName": "Summary"},
        "generated_report": {"value": file_url, "type": "file", "displayName": "Generated Report"},
        "score": {"value": 92, "type": "float", "displayName": "Score"},
        "verdict": {"value": "PASS", "type": "str", "displayName": "Verdict"},
        # The workflow's jobResultsPayloadSchema names this output "Reviewer Comments".
        "comments": {
            "value": "All documents validated successfully.",
            "type": "str",
            "displayName": "Reviewer Comments",
        },
        "inputs_received": {"value": 4, "type": "float", "displayName": "Inputs Received"},
    }
    download = requests.get(file_url, timeout=TIMEOUT)
    assert download.status_code == 200 and download.content == current.expected_output_file(job_id)
    # The workflow's details describe the same outputs, by the same names.
    described = capi.get(f"/workflow/{DEFAULT_WORKFLOW_ID}").json()["jobResultsPayloadSchema"]
    assert {name: (entry["display_name"], entry["type"]) for name, entry in described.items()} == {
        name: (output["displayName"], output["type"]) for name, output in outputs.items()
    }


def test_results_shape_settings_do_not_change_the_current_results(capi, current):
    current.set_results_shape(REPORT_WORKFLOW_ID, "results")
    job_id = capi.initiate(REPORT_WORKFLOW_ID)
    instance = {"workflow_input_rd7q2m1xa": {"value": "2026-01-02", "type": "date"}}
    instance["workflow_input_rg4k8v0zn"] = {"value": "EMEA", "type": "str"}
    assert capi.execute(job_id, instance).status_code == 201
    capi.wait_until_finished(job_id)
    outputs = capi.get(f"/job/{job_id}/results").json()["jobResultsPayloadSchema"]
    assert outputs["total_sales"] == {"value": 18250.5, "type": "float", "displayName": "Total Sales"}
    assert outputs["currency"]["displayName"] == "Currency"


def test_the_audit_names_the_running_node_then_every_executed_one(capi, current):
    current.configure(job_duration=0.9)
    job_id = capi.initiate()
    before = capi.audit(job_id)
    assert set(before) == AUDIT_KEYS
    assert (before["running_node"], before["next_node_to_execute"], before["remaining_nodes_to_execute"]) == (
        "",
        "workflow_input",
        NODES,
    )
    capi.execute(job_id, REQUIRED_INPUTS)
    first = capi.audit(job_id)
    assert first["running_node"] == "workflow_input" and first["executed_nodes"] == []
    assert first["nb_nodes"] == 3 and first["remaining_nodes_to_execute"] == NODES[1:]
    data = first["audit"]["nodes_execution_data"]["workflow_input"]
    assert data["status"] == "running" and ISO_Z.match(data["started_at"]) and data["ended_at"] is None
    later = wait_for(lambda: (audit := capi.audit(job_id))["running_node"] == "workflow_agent" and audit)
    assert later["executed_nodes"] == ["workflow_input"] and later["next_node_to_execute"] == "workflow_output"
    assert capi.wait_until_finished(job_id) == "COMPLETED"
    done = capi.audit(job_id)
    assert done["executed_nodes"] == NODES and done["nb_executed_nodes"] == 3
    assert (done["running_node"], done["next_node_to_execute"], done["failed_nodes"]) == ("", "", [])
    assert {entry["status"] for entry in done["audit"]["nodes_execution_data"].values()} == {"completed"}


def test_a_failed_job_names_its_failed_node_and_why(capi):
    instance = {key: value for key, value in REQUIRED_INPUTS.items() if key != "workflow_input_a0hk6ujuo"}
    job_id = capi.run(instance)
    assert capi.audit(job_id)["running_node"] == "workflow_input"
    assert capi.wait_until_finished(job_id) == "FAILED"
    audit = capi.audit(job_id)
    assert audit["failed_nodes"] == NODES and audit["nb_failed_nodes"] == 3
    assert audit["executed_nodes"] == [] and audit["running_node"] == ""
    data = audit["audit"]["nodes_execution_data"]
    assert data["workflow_input"]["status"] == "failed"
    assert data["workflow_input"]["error"] == "required input 'Threshold' (workflow_input_a0hk6ujuo) was not provided"
    assert ISO_Z.match(data["workflow_input"]["ended_at"])
    assert data["workflow_agent"]["error"] == "Upstream node workflow_input failed"
    assert capi.get(f"/job/{job_id}/results").json() == {"jobResultsPayloadSchema": {}}


def test_a_forced_failure_fails_the_running_node(capi, current):
    current.configure(job_duration=30)
    job_id = capi.run(REQUIRED_INPUTS)
    current.set_job_status(job_id, "FAILED")
    audit = capi.audit(job_id)
    assert audit["failed_nodes"] == NODES and audit["running_node"] == ""
    error = audit["audit"]["nodes_execution_data"]["workflow_input"]["error"]
    assert error == "Job status set to FAILED (emulator override)"
    other = capi.run(REQUIRED_INPUTS)
    current.set_job_status(other, "COMPLETED")
    assert capi.audit(other)["executed_nodes"] == NODES


def test_a_status_sequence_moves_the_nodes_and_its_final_status_decides(capi, current):
    current.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", "RUNNING", "CANCELLED"], checks_per_status=1)
    job_id = capi.run(REQUIRED_INPUTS)
    assert capi.audit(job_id)["running_node"] == "workflow_input"
    assert capi.status(job_id) == "QUEUED"
    assert capi.audit(job_id)["running_node"] == "workflow_agent"
    assert [capi.status(job_id) for _ in range(2)] == ["RUNNING", "CANCELLED"]
    # Stopped before the last node, which never runs.
    audit = capi.audit(job_id)
    assert audit["executed_nodes"] == NODES[:2] and audit["remaining_nodes_to_execute"] == ["workflow_output"]
    assert (audit["running_node"], audit["failed_nodes"]) == ("", [])
    current.set_status_sequence(DEFAULT_WORKFLOW_ID, ["FAILED"])
    failed = capi.run(REQUIRED_INPUTS)
    assert capi.audit(failed)["failed_nodes"] == ["workflow_output"]
