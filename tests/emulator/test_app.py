"""app.py: the emulator's Opus API, upload storage and admin routes, over real loopback HTTP."""

from __future__ import annotations

import hashlib
import json
import re
import resource
import time

import pytest
import requests

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, REPORT_WORKFLOW_ID
from tests.emulator.helpers import REQUIRED_INPUTS, TIMEOUT, Api

pytestmark = pytest.mark.integration
pytest_plugins = ["airflow_provider_opus.emulator.pytest_plugin"]

# -- authentication and workflows --------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_api_rejects_a_missing_or_wrong_service_key(emulator, key):
    headers = {} if key is None else {"x-service-key": key}
    response = requests.get(f"{emulator.url}/workflow/{DEFAULT_WORKFLOW_ID}", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid or missing x-service-key"}
    (logged,) = emulator.requests("get_workflow")
    assert logged["status"] == 401 and logged["had_service_key"] is (key is not None)
    assert "wrong-key" not in json.dumps(emulator.requests())


def test_workflow_details_have_the_documented_shape(api):
    response = api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}")
    assert response.status_code == 200
    details = response.json()
    assert set(details) == {
        "createdAt",
        "workflowId",
        "name",
        "description",
        "industry",
        "active",
        "workflowBlueprint",
        "executionEstimation",
        "workflowImage",
        "jobPayloadSchema",
        "jobResultsPayloadSchema",
    }
    assert (details["workflowId"], details["name"], details["active"]) == (DEFAULT_WORKFLOW_ID, "Invoice Review", True)
    schema = details["jobPayloadSchema"]
    assert sorted(entry["type"] for entry in schema.values()) == sorted(
        ["str", "float", "file", "bool", "array", "object", "date", "array_files"]
    )
    threshold = schema["workflow_input_a0hk6ujuo"]
    assert threshold == {
        "id": "a0hk6ujuo",
        "variable_name": "workflow_input_a0hk6ujuo",
        "display_name": "Threshold",
        "type": "float",
        "is_nullable": False,
        "description": threshold["description"],
        "tags": [],
    }
    assert schema["workflow_input_h69vx5i4a"]["tags"] == [
        {"variable_name": "allowed_file_types", "value": ["PDF", "PNG", "JPG", "JPEG"]}
    ]
    # One entry per output a completed job returns: summary, outputFiles, its results data and inputs_received.
    assert list(details["jobResultsPayloadSchema"]) == [
        "summary",
        "outputFiles",
        "score",
        "verdict",
        "comments",
        "inputs_received",
    ]


def test_minimal_bundled_workflow_gets_full_details_without_the_emulator_section(api):
    invoice = api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}").json()
    report = api.get(f"/workflow/{REPORT_WORKFLOW_ID}").json()
    assert set(report) == set(invoice)
    assert set(report["workflowBlueprint"]) == set(invoice["workflowBlueprint"])
    assert set(report["executionEstimation"]) == set(invoice["executionEstimation"])
    names = {entry["display_name"]: entry for entry in report["jobPayloadSchema"].values()}
    assert set(names) == {"Report Date", "Region", "Include Charts"}
    assert names["Include Charts"]["is_nullable"] is True and names["Region"]["is_nullable"] is False


def test_unknown_workflow_is_404(api):
    response = api.get("/workflow/NoSuchWorkflow")
    assert response.status_code == 404
    assert "NoSuchWorkflow" in response.json()["message"]


# -- initiate -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "t", "description": "d"}, "workflowId"),
        ({"workflowId": DEFAULT_WORKFLOW_ID, "description": "d"}, "title"),
        ({"workflowId": DEFAULT_WORKFLOW_ID, "title": "t", "description": ""}, "description"),
        ({"workflowId": DEFAULT_WORKFLOW_ID, "title": 5, "description": "d"}, "title"),
    ],
)
def test_initiate_rejects_a_missing_or_empty_field(api, emulator, body, field):
    response = api.post("/job/initiate", body)
    assert response.status_code == 400
    assert field in response.json()["message"]
    assert emulator.jobs() == []


def test_initiate_rejects_a_body_that_is_not_json(api):
    response = api.post("/job/initiate", data="{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid request: request body is not valid JSON"}


def test_initiate_unknown_workflow_is_404(api, emulator):
    response = api.post("/job/initiate", {"workflowId": "NoSuchWorkflow", "title": "t", "description": "d"})
    assert response.status_code == 404 and "NoSuchWorkflow" in response.json()["message"]
    assert emulator.jobs() == []


def test_initiate_creates_a_job_that_has_not_started(api, emulator):
    job_id = api.initiate()
    (job,) = emulator.jobs()
    assert job["jobExecutionId"] == job_id and job["status"] == "NOT STARTED"
    assert (job["workflowId"], job["title"], job["description"]) == (DEFAULT_WORKFLOW_ID, "t", "d")
    assert api.status(job_id) == "NOT STARTED"
    assert api.audit_actions(job_id) == ["Job initiated"]


# -- upload URLs and storage ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extension", "suffix"), [(".pdf", "pdf"), ("PDF", "pdf"), ("jpeg", "jpeg"), (".Xlsx", "xlsx")]
)
def test_upload_url_accepts_extensions_with_or_without_dot_in_any_case(api, emulator, extension, suffix):
    response = api.upload_url(extension)
    assert response.status_code == 200
    urls = response.json()
    assert set(urls) == {"presignedUrl", "fileUrl"}
    assert re.fullmatch(
        re.escape(emulator.storage_url) + r"/upload/[\w-]+\?X-Amz-Signature=[0-9a-f]+", urls["presignedUrl"]
    )
    assert re.fullmatch(
        re.escape(emulator.storage_url) + rf"/media/private/uploaded/media_[0-9a-f-]{{36}}\.{suffix}", urls["fileUrl"]
    )


@pytest.mark.parametrize(
    ("extension", "scope", "listed"),
    [
        ("exe", "organization", "jpeg, png, jpg, pdf, docx, csv, xls, xlsx, txt, json, html, xml"),
        ("", "organization", "jpeg, png"),
        ("pdf", "public", "all, user, workspace, organization"),
        ("pdf", "Organization", "all, user, workspace, organization"),
    ],
)
def test_upload_url_rejects_bad_extensions_and_scopes(api, extension, scope, listed):
    response = api.upload_url(extension, scope)
    assert response.status_code == 400
    assert listed in response.json()["message"]


def test_storage_put_streams_the_body_and_records_what_it_saw(api, emulator):
    first, second = api.upload_url().json(), api.upload_url().json()
    chunks = [b"%PDF-1.4 ", b"x" * 100_000, b" end"]
    # A generator makes requests send a chunked body: nothing tells the server the size up front.
    response = requests.put(
        first["presignedUrl"], data=iter(chunks), headers={"content-type": "application/pdf"}, timeout=TIMEOUT
    )
    assert (response.status_code, response.content) == (200, b"")
    headers = {"x-service-key": emulator.service_key, "authorization": "Bearer leak"}
    assert requests.put(second["presignedUrl"], data=b"abc", headers=headers, timeout=TIMEOUT).status_code == 200

    uploads = {upload["fileUrl"]: upload for upload in emulator.uploads()}
    body = b"".join(chunks)
    assert uploads[first["fileUrl"]] | {"issuedAt": None} == {
        "fileUrl": first["fileUrl"],
        "extension": "pdf",
        "accessScope": "organization",
        "issuedAt": None,
        "uploaded": True,
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "content_type": "application/pdf",
        "had_service_key": False,
        "had_authorization": False,
    }
    assert uploads[second["fileUrl"]]["had_service_key"] is True
    assert uploads[second["fileUrl"]]["had_authorization"] is True
    puts = emulator.requests("storage_put")
    assert [(put["listener"], put["status"], put["had_service_key"]) for put in puts] == [
        ("storage", 200, False),
        ("storage", 200, True),
    ]


def test_storage_put_does_not_hold_the_body_in_memory(api, emulator):
    presigned_url = api.upload_url().json()["presignedUrl"]
    size, chunk = 256 * 1024 * 1024, b"\0" * (1024 * 1024)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    response = requests.put(presigned_url, data=(chunk for _ in range(size // len(chunk))), timeout=60)
    assert response.status_code == 200
    assert emulator.uploads()[0]["size"] == size
    # The server runs in this process: buffering the body would raise the peak by about its size.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 64 * 1024


def test_storage_put_rejects_unknown_wrongly_signed_and_expired_urls(opus_emulator):
    api = Api(opus_emulator)
    presigned_url = api.upload_url().json()["presignedUrl"]
    base, signature = presigned_url.split("?X-Amz-Signature=")
    attempts = {
        "unknown token": f"{opus_emulator.storage_url}/upload/nope?X-Amz-Signature={signature}",
        "wrong signature": f"{base}?X-Amz-Signature={'0' * len(signature)}",
        "no signature": base,
    }
    for url in attempts.values():
        response = requests.put(url, data=b"x" * 1000, timeout=TIMEOUT)
        assert response.status_code == 403 and "Invalid" in response.json()["message"]
    opus_emulator.configure(upload_url_ttl=0)
    expired = api.upload_url().json()["presignedUrl"]
    time.sleep(0.01)
    response = requests.put(expired, data=b"x", timeout=TIMEOUT)
    assert response.status_code == 403 and response.json() == {"message": "Upload URL has expired"}
    assert not any(upload["uploaded"] for upload in opus_emulator.uploads())


# -- execute --------------------------------------------------------------------------------------------


def test_execute_unknown_job_is_404(api):
    response = api.execute("no-such-job", REQUIRED_INPUTS)
    assert response.status_code == 404 and "no-such-job" in response.json()["message"]


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ([], "jobPayloadSchemaInstance must be an object"),
        (None, "jobPayloadSchemaInstance must be an object"),
        ({"workflow_input_nope": {"value": 1, "type": "str"}}, "unknown input 'workflow_input_nope'"),
        (
            {"workflow_input_we4tej0ly": "ACME"},
            'workflow_input_we4tej0ly must be an object {"value": ..., "type": ...}',
        ),
        ({"workflow_input_we4tej0ly": {"value": "ACME"}}, "workflow_input_we4tej0ly must be an object"),
        (
            {"workflow_input_a0hk6ujuo": {"value": "0.8", "type": "str"}},
            "workflow_input_a0hk6ujuo has type 'str' but the workflow expects 'float'",
        ),
    ],
)
def test_execute_rejects_a_malformed_instance(api, emulator, instance, message):
    job_id = api.initiate()
    response = api.execute(job_id, instance)
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert api.status(job_id) == "NOT STARTED"


def test_execute_requires_the_instance_field(api):
    response = api.post("/job/execute", {"jobExecutionId": api.initiate()})
    assert response.status_code == 400 and "jobPayloadSchemaInstance" in response.json()["message"]


def test_execute_answers_201_with_the_values_and_then_409(api, emulator):
    job_id = api.initiate()
    instance = {
        **REQUIRED_INPUTS,
        "workflow_input_a0hk6ujuo": {"value": 0.8, "type": "float", "displayName": "Threshold"},
    }
    response = api.execute(job_id, instance)
    assert response.status_code == 201
    assert response.json() == {
        "success": True,
        "message": "Job execution has been started",
        "jobExecutionId": job_id,
        "jobPayloadSchemaInstance": {name: item["value"] for name, item in instance.items()},
    }
    assert emulator.jobs()[0]["jobPayloadSchemaInstance"] == instance
    again = api.execute(job_id, instance)
    assert again.status_code == 409 and "already been executed" in again.json()["message"]


# -- admin routes -----------------------------------------------------------------------------------------


def test_admin_routes(emulator):
    admin = requests.Session()  # deliberately without a service key
    base = f"{emulator.url}/_emulator"
    assert admin.get(f"{base}/health", timeout=TIMEOUT).json() == {"status": "ok"}

    injected = admin.post(f"{base}/faults", json={"endpoint": "get_workflow", "faults": [{"status": 418}]})
    assert (injected.status_code, injected.json()) == (201, {"endpoint": "get_workflow", "pending": 1})
    api = Api(emulator)
    assert api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}").status_code == 418
    admin.post(f"{base}/faults", json={"endpoint": "get_workflow", "faults": [{"status": 418}]})
    assert admin.delete(f"{base}/faults", timeout=TIMEOUT).status_code == 204
    assert api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}").status_code == 200
    bad = admin.post(f"{base}/faults", json={"endpoint": "get_workflow", "faults": [{"status": 1}]})
    assert bad.status_code == 400 and "HTTP status code" in bad.json()["message"]

    logged = admin.get(f"{base}/requests", params={"endpoint": "get_workflow"}, timeout=TIMEOUT).json()["requests"]
    assert [entry["status"] for entry in logged] == [418, 200]
    assert set(logged[0]) == {
        "listener",
        "endpoint",
        "method",
        "path",
        "client_port",
        "status",
        "had_service_key",
        "time",
        "fault",
    }
    assert {entry["endpoint"] for entry in emulator.requests() if entry["path"].startswith("/_emulator/")} == {"admin"}

    config = admin.post(f"{base}/config", json={"job_duration": 0, "job_duration_jitter": 0}, timeout=TIMEOUT)
    assert config.json() == {"job_duration": 0.0, "job_duration_jitter": 0.0, "upload_url_ttl": 3600.0, "api": "legacy"}
    for body in ({"job_duration": -1}, {"duration": 1}):
        assert admin.post(f"{base}/config", json=body, timeout=TIMEOUT).status_code == 400

    job_id = api.run(REQUIRED_INPUTS)
    (job,) = admin.get(f"{base}/jobs", timeout=TIMEOUT).json()["jobs"]
    assert (job["jobExecutionId"], job["status"]) == (job_id, "COMPLETED")
    forced = admin.post(f"{base}/jobs/{job_id}/status", json={"status": "FAILED"}, timeout=TIMEOUT)
    assert forced.json() == {"jobExecutionId": job_id, "status": "FAILED"}
    assert api.status(job_id) == "FAILED"
    assert admin.post(f"{base}/jobs/nope/status", json={"status": "FAILED"}, timeout=TIMEOUT).status_code == 404

    api.upload_url()
    assert len(admin.get(f"{base}/uploads", timeout=TIMEOUT).json()["uploads"]) == 1
    assert admin.post(f"{base}/reset", timeout=TIMEOUT).status_code == 204
    assert emulator.jobs() == [] and emulator.uploads() == []
    assert emulator.requests() == []
