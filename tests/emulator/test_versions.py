"""versions.py: workflow versions in GET /workflow, pinned jobs checked against their version, and the file format."""

from __future__ import annotations

import json

import pytest

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, VERSIONED_WORKFLOW_ID, OpusEmulator, WorkflowConfigError
from tests.emulator.helpers import CONTRACT_V2_INPUTS, CurrentApi

pytestmark = pytest.mark.integration

V1_ID, V2_ID, V3_ID = (f"0a6c1b52-6f0e-4d3b-8c7a-1e2f3a4b5c6{n}" for n in (1, 2, 3))
COUNTERPARTY, NOTES, JURISDICTION = "workflow_input_cp7x2k9qa", "workflow_input_nt3v8m1zd", "workflow_input_jr5w0p4ye"


def _details(capi: CurrentApi, query: str = "") -> dict:
    response = capi.get(f"/workflow/{VERSIONED_WORKFLOW_ID}{query}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_without_a_version_the_latest_active_one_is_described(capi):
    details = _details(capi)
    # Version 3 is higher but inactive.
    assert (details["version"], details["workflowVersionId"]) == (2, V2_ID)
    assert list(details["jobPayloadSchema"]) == [COUNTERPARTY, JURISDICTION]


@pytest.mark.parametrize(
    ("query", "number", "inputs"),
    [
        ("?version=1", 1, [COUNTERPARTY, NOTES]),
        (f"?workflowVersionId={V1_ID}", 1, [COUNTERPARTY, NOTES]),
        (f"?workflowVersionId={V3_ID.upper()}", 3, [COUNTERPARTY, JURISDICTION, "workflow_input_cv6q1h8rt"]),
        (f"?version=1&workflowVersionId={V2_ID}", 2, [COUNTERPARTY, JURISDICTION]),  # the id wins
    ],
)
def test_a_version_is_chosen_by_number_or_id(capi, query, number, inputs):
    details = _details(capi, query)
    assert details["version"] == number and list(details["jobPayloadSchema"]) == inputs
    assert details["workflowId"] == VERSIONED_WORKFLOW_ID and "versions" not in details


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?version=4", 404, "has no version 4; its versions are: 1 (0a6c1b52"),
        ("?workflowVersionId=00000000-0000-4000-8000-000000000000", 404, "has no version id 00000000"),
        ("?version=0", 400, "version must be a positive integer"),
        ("?version=two", 400, "version must be a positive integer"),
        ("?workflowVersionId=2", 400, "workflowVersionId must be a UUID"),
    ],
)
def test_an_unknown_or_malformed_version_is_refused(capi, query, status, message):
    response = capi.get(f"/workflow/{VERSIONED_WORKFLOW_ID}{query}")
    assert response.status_code == status and message in response.json()["message"]


def test_a_workflow_without_versions_has_version_one(capi):
    details = capi.get(f"/workflow/{DEFAULT_WORKFLOW_ID}").json()
    assert details["version"] == 1 and len(details["workflowVersionId"]) == 36
    assert capi.get(f"/workflow/{DEFAULT_WORKFLOW_ID}?version=2").status_code == 404


def test_legacy_describes_a_workflow_as_it_did(api):
    details = api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}?version=7").json()
    assert "version" not in details and "workflowVersionId" not in details


def test_a_job_pinned_to_version_one_is_checked_against_version_one(capi, current):
    job_id = capi.initiate(VERSIONED_WORKFLOW_ID, workflowVersionNumber=1)
    assert current.jobs()[0]["workflowVersion"] == 1 and current.jobs()[0]["workflowVersionId"] == V1_ID
    # Jurisdiction is only in version 2; Notes only in version 1.
    refused = capi.execute(job_id, CONTRACT_V2_INPUTS)
    assert refused.status_code == 400 and "unknown input 'workflow_input_jr5w0p4ye'" in refused.json()["message"]
    instance = {COUNTERPARTY: CONTRACT_V2_INPUTS[COUNTERPARTY], NOTES: {"value": "rush", "type": "str"}}
    assert capi.execute(job_id, instance).status_code == 201
    assert capi.wait_until_finished(job_id) == "COMPLETED"


def test_an_unpinned_job_runs_the_latest_active_version(capi, current):
    job_id = capi.initiate(VERSIONED_WORKFLOW_ID)
    notes = {COUNTERPARTY: CONTRACT_V2_INPUTS[COUNTERPARTY], NOTES: {"value": "rush", "type": "str"}}
    assert capi.execute(job_id, notes).status_code == 400
    # Version 2 requires the jurisdiction: without it the job fails, naming it.
    assert capi.execute(job_id, {COUNTERPARTY: CONTRACT_V2_INPUTS[COUNTERPARTY]}).status_code == 201
    assert capi.wait_until_finished(job_id) == "FAILED"
    assert "required input 'Jurisdiction'" in current.jobs()[0]["failure"]


def test_a_job_pinned_by_version_id_and_a_missing_version(capi, current):
    job_id = capi.initiate(VERSIONED_WORKFLOW_ID, workflowVersionId=V3_ID, workflowVersionNumber=1)
    assert current.jobs()[0]["workflowVersion"] == 3  # the id wins here too
    missing = capi.post("/job/initiate", {"workflowId": VERSIONED_WORKFLOW_ID, "workflowVersionNumber": 9})
    assert missing.status_code == 404 and "ContractCheck001 has no version 9" in missing.json()["message"]
    assert [job["jobExecutionId"] for job in current.jobs()] == [job_id]


VERSION = {"version": 1, "jobPayloadSchema": {"workflow_input_a": {"type": "str"}}}


@pytest.mark.parametrize(
    ("workflow", "message"),
    [
        ({"versions": []}, "versions must be a non-empty list"),
        ({"versions": [{**VERSION, "version": 0}]}, "versions[0]: version must be an integer >= 1"),
        ({"versions": [VERSION, VERSION]}, "versions[1]: version 1 is defined twice"),
        ({"versions": [{**VERSION, "active": False}]}, "versions: at least one version must be active"),
        ({"versions": [{**VERSION, "workflowVersionId": "v1"}]}, "versions[0]: workflowVersionId must be a UUID"),
        ({"versions": [{**VERSION, "draft": True}]}, "versions[0]: unknown key(s) draft"),
        ({"versions": [{"version": 1}]}, "versions[0]: jobPayloadSchema is required"),
        ({"versions": [VERSION], "jobPayloadSchema": {}}, "give jobPayloadSchema or versions"),
        (
            {"versions": [{**VERSION, "jobPayloadSchema": {"workflow_input_a": {"type": "text"}}}]},
            "versions[0].jobPayloadSchema.workflow_input_a: type must be one of",
        ),
    ],
)
def test_a_bad_versions_list_is_a_clear_error(tmp_path, workflow, message):
    path = tmp_path / "workflows.json"
    path.write_text(json.dumps({"workflows": [{"workflowId": "W1", "name": "W", **workflow}]}))
    with pytest.raises(WorkflowConfigError) as raised:
        OpusEmulator(workflows=path)
    assert f"workflow 'W1': {message}" in str(raised.value)


def test_versions_in_a_workflows_file_get_derived_ids(tmp_path):
    workflows = [{"workflowId": "W1", "name": "W", "versions": [VERSION, {**VERSION, "version": 5}]}]
    first, again = OpusEmulator(workflows=workflows), OpusEmulator(workflows=workflows)
    versions = first.state.workflows["W1"].versions
    assert [version.number for version in versions] == [1, 5]
    assert versions == again.state.workflows["W1"].versions  # the same ids from run to run
    assert versions[0].version_id != versions[1].version_id
