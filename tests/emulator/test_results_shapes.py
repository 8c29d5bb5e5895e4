"""Results shapes: the jobResultsPayloadSchema naming every output, and both documented results bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, REPORT_WORKFLOW_ID, OpusEmulator, output_file_path
from tests.emulator.helpers import REQUIRED_INPUTS, TIMEOUT, Api, fresh_api

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

ENTRY_KEYS = {"variable_name", "display_name", "type", "description", "value"}
TYPED_DATA = {
    "verdict": "PASS",
    "risk_level": "low",
    "score": 7,
    "ratio": 0.25,
    "passed": True,
    "details": {"pages": 3},
    "flags": ["a"],
    "nothing": None,
    "riskScore_v2": 1,
}
# A workflow that sets results_shape in its file, one that leaves it to the emulator, one with its own schema.
SCHEMA_FILE = {
    "workflowId": "SchemaShaped0001",
    "name": "Schema shaped",
    "jobPayloadSchema": {},
    "emulator": {"duration_seconds": 0, "results_data": TYPED_DATA, "results_shape": "schema"},
}
UNSET_FILE = {
    "workflowId": "UnsetShape000001",
    "name": "Unset shape",
    "jobPayloadSchema": {},
    "emulator": {"duration_seconds": 0, "results_data": {"total": 5}},
}
RESULTS_FILE = {
    "workflowId": "ResultsShaped001",
    "name": "Results shaped",
    "jobPayloadSchema": {},
    "jobResultsPayloadSchema": {"total": {"display_name": "Grand Total"}, "unused": {"note": 1}},
    "emulator": {"duration_seconds": 0, "results_data": {"total": 5}, "results_shape": "results"},
}


@pytest.fixture(scope="module")
def _custom_server() -> Iterator[OpusEmulator]:
    with OpusEmulator(
        workflows=[SCHEMA_FILE, UNSET_FILE, RESULTS_FILE], results_shape="schema", api="legacy"
    ) as server:
        yield server


@pytest.fixture
def custom(_custom_server: OpusEmulator) -> Iterator[Api]:
    yield from fresh_api(_custom_server)


def completed_results(api: Api, workflow_id: str, instance: dict | None = None) -> tuple[str, dict]:
    job_id = api.run(instance or {}, workflow_id=workflow_id)
    assert api.wait_until_finished(job_id) == "COMPLETED"
    response = api.get(f"/job/{job_id}/results")
    assert response.status_code == 200, response.text
    return job_id, response.json()


def test_default_results_schema_names_every_output_with_display_names_and_types(custom):
    schema = custom.get("/workflow/SchemaShaped0001").json()["jobResultsPayloadSchema"]
    assert list(schema) == ["summary", "outputFiles", *TYPED_DATA, "inputs_received"]
    assert schema["summary"] == {
        "variable_name": "summary",
        "display_name": "Summary",
        "type": "str",
        "description": schema["summary"]["description"],
    }
    assert schema["outputFiles"]["display_name"] == "Output Files" and schema["outputFiles"]["type"] == "array_files"
    assert schema["risk_level"] == {
        "variable_name": "risk_level",
        "display_name": "Risk Level",
        "type": "str",
        "description": "The risk level the job returned.",
    }
    described = {name: (entry["display_name"], entry["type"]) for name, entry in schema.items()}
    assert described == {
        "summary": ("Summary", "str"),
        "outputFiles": ("Output Files", "array_files"),
        "verdict": ("Verdict", "str"),
        "risk_level": ("Risk Level", "str"),
        "score": ("Score", "float"),
        "ratio": ("Ratio", "float"),
        "passed": ("Passed", "bool"),
        "details": ("Details", "object"),
        "flags": ("Flags", "array"),
        "nothing": ("Nothing", "object"),
        # Only the first letter of each word changes: camelCase keeps its capitals.
        "riskScore_v2": ("RiskScore V2", "float"),
        "inputs_received": ("Inputs Received", "float"),
    }


def test_a_workflow_given_schema_is_kept_as_written(custom):
    schema = custom.get("/workflow/ResultsShaped001").json()["jobResultsPayloadSchema"]
    assert schema == RESULTS_FILE["jobResultsPayloadSchema"]


def test_bundled_workflows_name_their_outputs(api):
    invoice = api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}").json()["jobResultsPayloadSchema"]
    assert {name: entry["display_name"] for name, entry in invoice.items()} == {
        "summary": "Summary",
        "outputFiles": "Output Files",
        "score": "Score",
        "verdict": "Verdict",
        "comments": "Reviewer Comments",
        "inputs_received": "Inputs Received",
    }
    report = api.get(f"/workflow/{REPORT_WORKFLOW_ID}").json()["jobResultsPayloadSchema"]
    assert {name: (entry["display_name"], entry["type"]) for name, entry in report.items()} == {
        "summary": ("Summary", "str"),
        "outputFiles": ("Output Files", "array_files"),
        "total_sales": ("Total Sales", "float"),
        "orders": ("Orders", "float"),
        "currency": ("Currency", "str"),
        "inputs_received": ("Inputs Received", "float"),
    }


def test_one_job_in_both_shapes(api, emulator):
    assert emulator.results_shape(DEFAULT_WORKFLOW_ID) == "results"
    job_id, body = completed_results(api, DEFAULT_WORKFLOW_ID, REQUIRED_INPUTS)
    file_url = f"{emulator.storage_url}{output_file_path(job_id)}"
    assert body == {
        "jobExecutionId": job_id,
        "status": "COMPLETED",
        "results": {
            "summary": "Job executed successfully.",
            "outputFiles": [file_url],
            "data": {
                "score": 92,
                "verdict": "PASS",
                "comments": "All documents validated successfully.",
                "inputs_received": 4,
            },
        },
    }

    # The shape is read per request, so the same job answers in the other shape at once.
    assert emulator.set_results_shape(DEFAULT_WORKFLOW_ID, "schema") == "schema"
    body = api.get(f"/job/{job_id}/results").json()
    assert set(body) == {"jobExecutionId", "status", "jobResultsPayloadSchema"}
    assert (body["jobExecutionId"], body["status"]) == (job_id, "COMPLETED")
    outputs = body["jobResultsPayloadSchema"]
    assert list(outputs) == ["summary", "outputFiles", "score", "verdict", "comments", "inputs_received"]
    assert all(set(entry) == ENTRY_KEYS for entry in outputs.values())
    assert {name: entry["value"] for name, entry in outputs.items()} == {
        "summary": "Job executed successfully.",
        "outputFiles": [file_url],
        "score": 92,
        "verdict": "PASS",
        "comments": "All documents validated successfully.",
        "inputs_received": 4,
    }
    # Described as the workflow's jobResultsPayloadSchema describes them.
    declared = api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}").json()["jobResultsPayloadSchema"]
    assert {name: {**entry, "value": outputs[name]["value"]} for name, entry in declared.items()} == outputs
    assert outputs["comments"]["display_name"] == "Reviewer Comments"


def test_unfinished_and_failed_jobs_have_empty_results_in_both_shapes(api, emulator):
    waiting = api.initiate()
    failed = api.run({})  # required inputs missing: the job fails
    assert api.wait_until_finished(failed) == "FAILED"
    forced = api.run(REQUIRED_INPUTS)
    emulator.set_job_status(forced, "COMPLETED WITH ERRORS")
    for shape, field in (("results", "results"), ("schema", "jobResultsPayloadSchema")):
        emulator.set_results_shape(DEFAULT_WORKFLOW_ID, shape)
        for job_id, status in ((waiting, "NOT STARTED"), (failed, "FAILED"), (forced, "COMPLETED WITH ERRORS")):
            assert api.get(f"/job/{job_id}/results").json() == {"jobExecutionId": job_id, "status": status, field: {}}


def test_schema_shape_from_the_workflows_file_with_derived_descriptions(custom):
    job_id, body = completed_results(custom, "SchemaShaped0001")
    outputs = body["jobResultsPayloadSchema"]
    assert "results" not in body and list(outputs) == ["summary", "outputFiles", *TYPED_DATA, "inputs_received"]
    assert outputs["risk_level"] == {
        "variable_name": "risk_level",
        "display_name": "Risk Level",
        "type": "str",
        "description": "The risk level the job returned.",
        "value": "low",
    }
    assert outputs["nothing"]["value"] is None and outputs["details"]["value"] == {"pages": 3}
    assert outputs["outputFiles"]["value"] == [f"{custom.emulator.storage_url}{output_file_path(job_id)}"]


def test_results_shape_precedence_run_time_then_file_then_emulator_wide(custom):
    emulator = custom.emulator
    # The emulator-wide shape (constructor) applies where the file sets none; the file's wins elsewhere.
    assert [emulator.results_shape(wid) for wid in ("SchemaShaped0001", "UnsetShape000001", "ResultsShaped001")] == [
        "schema",
        "schema",
        "results",
    ]
    _, unset = completed_results(custom, "UnsetShape000001")
    assert unset["jobResultsPayloadSchema"]["total"]["value"] == 5
    job_id, body = completed_results(custom, "ResultsShaped001")
    assert body["results"]["data"] == {"total": 5, "inputs_received": 0}

    assert emulator.set_results_shape("ResultsShaped001", "schema") == "schema"
    outputs = custom.get(f"/job/{job_id}/results").json()["jobResultsPayloadSchema"]
    # Its own schema describes "total"; outputs it does not name are still there, described by default.
    assert outputs["total"] == {
        "variable_name": "total",
        "display_name": "Grand Total",
        "type": "float",
        "description": "The total the job returned.",
        "value": 5,
    }
    assert list(outputs) == ["summary", "outputFiles", "total", "inputs_received"]
    assert outputs["inputs_received"]["value"] == 0
    assert emulator.set_results_shape("ResultsShaped001", None) == "results"
    emulator.set_results_shape("SchemaShaped0001", "results")
    emulator.reset()
    assert emulator.results_shape("SchemaShaped0001") == "schema"


def test_results_shape_admin_routes(api, emulator):
    route = f"{emulator.url}/_emulator/workflows/{DEFAULT_WORKFLOW_ID}/results-shape"
    assert requests.get(route, timeout=TIMEOUT).json() == {"workflowId": DEFAULT_WORKFLOW_ID, "shape": "results"}
    answer = requests.post(route, json={"shape": "schema"}, timeout=TIMEOUT)
    assert (answer.status_code, answer.json()) == (200, {"workflowId": DEFAULT_WORKFLOW_ID, "shape": "schema"})
    assert emulator.results_shape(DEFAULT_WORKFLOW_ID) == "schema"
    # A POST without a body reads, like GET.
    assert requests.post(route, timeout=TIMEOUT).json() == {"workflowId": DEFAULT_WORKFLOW_ID, "shape": "schema"}
    bad = requests.post(route, json={"shape": "flat"}, timeout=TIMEOUT)
    assert bad.status_code == 400 and "shape must be one of results, schema, got 'flat'" in bad.json()["message"]
    assert requests.post(route, json={}, timeout=TIMEOUT).status_code == 400
    assert emulator.results_shape(DEFAULT_WORKFLOW_ID) == "schema"
    cleared = requests.post(route, json={"shape": None}, timeout=TIMEOUT).json()
    assert cleared == {"workflowId": DEFAULT_WORKFLOW_ID, "shape": "results"}
    unknown = requests.get(f"{emulator.url}/_emulator/workflows/nope/results-shape", timeout=TIMEOUT)
    assert unknown.status_code == 404
    with pytest.raises(LookupError):
        emulator.set_results_shape("nope", "schema")


def test_unknown_emulator_wide_results_shape_is_refused():
    with pytest.raises(ValueError, match="results_shape must be one of results, schema, got 'xml'"):
        OpusEmulator(results_shape="xml")
