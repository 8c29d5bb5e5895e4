"""state.py: a job's life in the emulator: it runs, completes or fails with a reason, has results and an audit trail."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opus.emulator import REPORT_WORKFLOW_ID
from tests.emulator.helpers import EXTERNAL_FILE, ISO_Z, REQUIRED_INPUTS, TIMEOUT, parse_iso

pytestmark = pytest.mark.integration


def test_job_runs_then_completes_with_results_and_audit_trail(api, emulator):
    emulator.configure(job_duration=0.2)
    job_id = api.run({**REQUIRED_INPUTS, "workflow_input_m2z6rkzgj": {"value": None, "type": "bool"}})
    assert api.status(job_id) == "IN PROGRESS"
    assert api.get(f"/job/{job_id}/results").json() == {
        "jobExecutionId": job_id,
        "status": "IN PROGRESS",
        "results": {},
    }
    # The file entry appears halfway through the run, so it may or may not be there yet.
    assert api.audit_actions(job_id)[:2] == ["Job initiated", "Job execution started"]
    assert "Job completed successfully" not in api.audit_actions(job_id)

    assert api.wait_until_finished(job_id) == "COMPLETED"
    assert api.get(f"/job/{job_id}/results").json() == {
        "jobExecutionId": job_id,
        "status": "COMPLETED",
        "results": {
            "summary": "Job executed successfully.",
            "outputFiles": [f"{emulator.storage_url}/media/private/generated/output_{job_id}.pdf"],
            "data": {
                "score": 92,
                "verdict": "PASS",
                "comments": "All documents validated successfully.",
                "inputs_received": 5,
            },
        },
    }
    audit = api.get(f"/job/{job_id}/audit").json()
    assert audit["jobExecutionId"] == job_id
    assert [entry["action"] for entry in audit["auditTrail"]] == [
        "Job initiated",
        "Job execution started",
        "File validated and processed",
        "Job completed successfully",
    ]
    assert all(entry["actor"] == "SYSTEM" and ISO_Z.match(entry["timestamp"]) for entry in audit["auditTrail"])
    assert [entry["timestamp"] for entry in audit["auditTrail"]] == sorted(e["timestamp"] for e in audit["auditTrail"])


def test_report_workflow_results_carry_its_results_data(api, emulator):
    emulator.configure(job_duration=0)
    job_id = api.run(
        {
            "workflow_input_rd7q2m1xa": {"value": "2026-01-01", "type": "date"},
            "workflow_input_rg4k8v0zn": {"value": "EMEA", "type": "str"},
        },
        workflow_id=REPORT_WORKFLOW_ID,
    )
    data = api.get(f"/job/{job_id}/results").json()["results"]["data"]
    assert data == {"total_sales": 18250.5, "orders": 412, "currency": "EUR", "inputs_received": 2}


@pytest.mark.parametrize("threshold", ["omitted", None])
def test_missing_required_input_fails_the_job_with_the_reason_in_the_audit_trail(api, emulator, threshold):
    emulator.configure(job_duration=0.05)
    instance = dict(REQUIRED_INPUTS)
    if threshold == "omitted":
        del instance["workflow_input_a0hk6ujuo"]
    else:
        instance["workflow_input_a0hk6ujuo"] = {"value": None, "type": "float"}
    job_id = api.run(instance)
    assert api.wait_until_finished(job_id) == "FAILED"
    assert api.audit_actions(job_id)[-1] == (
        "Job failed: required input 'Threshold' (workflow_input_a0hk6ujuo) was not provided"
    )
    assert api.get(f"/job/{job_id}/results").json()["results"] == {}


def test_file_that_was_never_uploaded_fails_the_job(api, emulator):
    emulator.configure(job_duration=0.05)
    uploaded, never_put = api.upload_url().json(), api.upload_url(".docx").json()
    assert requests.put(uploaded["presignedUrl"], data=b"%PDF", timeout=TIMEOUT).status_code == 200
    job_id = api.run(
        {
            **REQUIRED_INPUTS,
            "workflow_input_h69vx5i4a": {"value": uploaded["fileUrl"], "type": "file"},
            "workflow_input_auqgnzk8d": {"value": [EXTERNAL_FILE, never_put["fileUrl"]], "type": "array_files"},
        }
    )
    assert api.wait_until_finished(job_id) == "FAILED"
    actions = api.audit_actions(job_id)
    assert actions[-1] == f"Job failed: file {never_put['fileUrl']} (workflow_input_auqgnzk8d) was never uploaded"
    assert actions.count("File validated and processed") == 2


def test_uploaded_and_external_files_are_processed(api, emulator):
    emulator.configure(job_duration=0)
    first, second = api.upload_url().json(), api.upload_url(".png").json()
    for urls in (first, second):
        assert requests.put(urls["presignedUrl"], data=b"data", timeout=TIMEOUT).status_code == 200
    job_id = api.run(
        {
            **REQUIRED_INPUTS,
            "workflow_input_h69vx5i4a": {"value": first["fileUrl"], "type": "file"},
            "workflow_input_auqgnzk8d": {"value": [EXTERNAL_FILE, second["fileUrl"]], "type": "array_files"},
        }
    )
    assert api.status(job_id) == "COMPLETED"
    assert api.audit_actions(job_id).count("File validated and processed") == 3


def test_jitter_staggers_completions(api, emulator):
    emulator.configure(job_duration=0.1, job_duration_jitter=0.5)
    for _ in range(10):
        api.run(REQUIRED_INPUTS)
    durations = [parse_iso(job["finishesAt"]) - parse_iso(job["executedAt"]) for job in emulator.jobs()]
    assert all(0.099 <= duration <= 0.601 for duration in durations)
    assert max(durations) - min(durations) > 0.05


def test_set_job_status_overrides_the_reported_status(api, emulator):
    emulator.configure(job_duration=0)
    job_id = api.run(REQUIRED_INPUTS)
    emulator.set_job_status(job_id, "CANCELLED")
    assert api.status(job_id) == "CANCELLED"
    assert api.get(f"/job/{job_id}/results").json()["results"] == {}
    assert api.audit_actions(job_id)[-1] == "Job status set to CANCELLED (emulator override)"
    with pytest.raises(LookupError, match="no-such-job"):
        emulator.set_job_status("no-such-job", "FAILED")


def test_job_endpoints_404_for_an_unknown_job(api):
    for path in ("status", "results", "audit"):
        response = api.get(f"/job/no-such-job/{path}")
        assert response.status_code == 404 and response.json() == {"message": "Job no-such-job not found"}
