"""The Opus emulator over real loopback HTTP: API behaviour, storage, faults, admin routes, lifecycle, CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import requests

from airflow_provider_opus.emulator import (
    DEFAULT_WORKFLOW_ID,
    REPORT_WORKFLOW_ID,
    OpusEmulator,
    WorkflowConfigError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration
pytest_plugins = ["airflow_provider_opus.emulator.pytest_plugin"]

TIMEOUT = 5
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EXTERNAL_FILE = "https://files.opus.com/media/private/uploaded/media_invoice.pdf"
REQUIRED_INPUTS = {
    "workflow_input_we4tej0ly": {"value": "ACME GmbH", "type": "str"},
    "workflow_input_a0hk6ujuo": {"value": 0.8, "type": "float"},
    "workflow_input_h69vx5i4a": {"value": EXTERNAL_FILE, "type": "file"},
    "workflow_input_k3ayfjyh7": {"value": "2026-12-01", "type": "date"},
}


class Api:
    """A requests session against one emulator, sending its service key."""

    def __init__(self, emulator: OpusEmulator) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.headers["x-service-key"] = emulator.service_key

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.emulator.url + path, timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.post(self.emulator.url + path, json=body, timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)

    def initiate(self, workflow_id: str = DEFAULT_WORKFLOW_ID) -> str:
        response = self.post("/job/initiate", {"workflowId": workflow_id, "title": "t", "description": "d"})
        assert response.status_code == 201, response.text
        return str(response.json()["jobExecutionId"])

    def execute(self, job_id: str, instance: Any) -> requests.Response:
        return self.post("/job/execute", {"jobExecutionId": job_id, "jobPayloadSchemaInstance": instance})

    def run(self, instance: dict[str, Any], workflow_id: str = DEFAULT_WORKFLOW_ID) -> str:
        job_id = self.initiate(workflow_id)
        response = self.execute(job_id, instance)
        assert response.status_code == 201, response.text
        return job_id

    def upload_url(self, extension: str = ".pdf", scope: str = "organization") -> requests.Response:
        return self.post("/job/file/upload", {"fileExtension": extension, "accessScope": scope})

    def status(self, job_id: str) -> str:
        return str(self.get(f"/job/{job_id}/status").json()["status"])

    def wait_until_finished(self, job_id: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while (status := self.status(job_id)) == "IN PROGRESS" and time.monotonic() < deadline:
            time.sleep(0.02)
        return status

    def audit_actions(self, job_id: str) -> list[str]:
        return [entry["action"] for entry in self.get(f"/job/{job_id}/audit").json()["auditTrail"]]


@pytest.fixture
def api(emulator: OpusEmulator) -> Iterator[Api]:
    client = Api(emulator)
    yield client
    client.session.close()


def parse_iso(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def port_is_open(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


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
    assert set(details["jobResultsPayloadSchema"]) == {"summary", "outputFiles", "data"}


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


# -- job lifecycle ----------------------------------------------------------------------------------------


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


# -- faults -----------------------------------------------------------------------------------------------


def test_status_fault_answers_without_processing_then_the_next_request_is_normal(api, emulator):
    emulator.inject("initiate_job", {"status": 503, "retry_after": "2"})
    body = {"workflowId": DEFAULT_WORKFLOW_ID, "title": "t", "description": "d"}
    response = api.post("/job/initiate", body)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {"message": "injected fault"}
    assert emulator.jobs() == []
    assert api.post("/job/initiate", body).status_code == 201
    logged = emulator.requests("initiate_job")
    assert [(entry["status"], entry["fault"]) for entry in logged] == [
        (503, {"status": 503, "retry_after": "2"}),
        (201, None),
    ]


def test_faults_are_consumed_in_order_and_times_repeats_one(api, emulator):
    job_id = api.initiate()
    emulator.inject("get_job_status", {"status": 502}, {"status": 500, "times": 2})
    statuses = [api.get(f"/job/{job_id}/status").status_code for _ in range(4)]
    assert statuses == [502, 500, 500, 200]


def test_non_json_and_wrongly_shaped_200_answers(api, emulator):
    job_id = api.initiate()
    emulator.inject(
        "get_job_status",
        {"status": 200, "body": "<html>not json</html>"},
        {"status": 200, "json": {"state": "DONE"}},
    )
    html = api.get(f"/job/{job_id}/status")
    assert (html.status_code, html.text) == (200, "<html>not json</html>")
    assert html.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        html.json()
    assert api.get(f"/job/{job_id}/status").json() == {"state": "DONE"}


def test_delay_fault_lets_the_client_time_out_while_the_job_is_still_created(api, emulator):
    emulator.inject("initiate_job", {"delay": 0.5})
    body = {"workflowId": DEFAULT_WORKFLOW_ID, "title": "t", "description": "d"}
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post("/job/initiate", body, timeout=0.2)
    assert len(emulator.jobs()) == 1
    emulator.inject("get_job_status", {"delay": 0.3, "status": 504})
    started = time.monotonic()
    assert api.get(f"/job/{emulator.jobs()[0]['jobExecutionId']}/status").status_code == 504
    assert time.monotonic() - started >= 0.3


def test_drop_before_closes_the_connection_without_processing(api, emulator):
    emulator.inject("initiate_job", {"drop": "before"})
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        api.post("/job/initiate", {"workflowId": DEFAULT_WORKFLOW_ID, "title": "t", "description": "d"})
    assert "without response" in str(info.value)
    assert emulator.jobs() == []
    (logged,) = emulator.requests("initiate_job")
    assert logged["status"] is None and logged["fault"] == {"drop": "before"}


def test_drop_after_processes_the_request_and_cuts_the_response_short(api, emulator):
    emulator.inject("initiate_job", {"drop": "after"})
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        api.post("/job/initiate", {"workflowId": DEFAULT_WORKFLOW_ID, "title": "t", "description": "d"})
    assert len(emulator.jobs()) == 1
    assert emulator.requests("initiate_job")[0]["status"] == 201
    api.initiate()  # the session recovers: the next request gets a fresh connection
    assert len(emulator.jobs()) == 2


def test_aiohttp_sees_drops_as_disconnects(emulator):
    body = {"workflowId": DEFAULT_WORKFLOW_ID, "title": "t", "description": "d"}

    async def scenario() -> None:
        async with aiohttp.ClientSession(headers={"x-service-key": emulator.service_key}) as session:
            emulator.inject("initiate_job", {"drop": "after"})
            with pytest.raises(aiohttp.ClientPayloadError):
                async with session.post(f"{emulator.url}/job/initiate", json=body) as response:
                    await response.read()
            emulator.inject("initiate_job", {"drop": "before"})
            with pytest.raises(aiohttp.ServerDisconnectedError):
                async with session.post(f"{emulator.url}/job/initiate", json=body) as response:
                    await response.read()
            # aiohttp silently resends an idempotent request once after a disconnect, so a GET needs two.
            emulator.inject("get_workflow", {"drop": "before"})
            async with session.get(f"{emulator.url}/workflow/{DEFAULT_WORKFLOW_ID}") as response:
                assert response.status == 200
            assert [entry["status"] for entry in emulator.requests("get_workflow")] == [None, 200]

    asyncio.run(scenario())
    assert len(emulator.jobs()) == 1


def test_storage_faults_apply_on_the_storage_listener(api, emulator):
    urls = api.upload_url().json()
    emulator.inject("storage_put", {"status": 503}, {"drop": "after"})
    assert requests.put(urls["presignedUrl"], data=b"x" * 100_000, timeout=TIMEOUT).status_code == 503
    assert emulator.uploads()[0]["uploaded"] is False
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        requests.put(urls["presignedUrl"], data=b"abc", timeout=TIMEOUT)
    assert emulator.uploads()[0]["size"] == 3


@pytest.mark.parametrize(
    ("endpoint", "fault", "message"),
    [
        ("admin", {"status": 500}, "Unknown endpoint 'admin'"),
        ("get_job_status", {}, "at least one of status, delay or drop"),
        ("get_job_status", {"status": 99}, "HTTP status code"),
        ("get_job_status", {"status": True}, "HTTP status code"),
        ("get_job_status", {"drop": "sideways"}, '"before" or "after"'),
        ("get_job_status", {"status": 500, "drop": "after"}, "cannot both"),
        ("get_job_status", {"retry_after": "1", "delay": 1}, "need a status"),
        ("get_job_status", {"status": 500, "times": 0}, "positive integer"),
        ("get_job_status", {"delay": -1}, "non-negative"),
        ("get_job_status", {"status": 500, "bogus": 1}, "Unknown fault key(s) bogus"),
    ],
)
def test_invalid_faults_are_refused_and_nothing_is_queued(api, emulator, endpoint, fault, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        emulator.inject(endpoint, {"status": 503}, fault)
    assert api.get(f"/job/{api.initiate()}/status").status_code == 200


def test_clear_faults(api, emulator):
    emulator.inject("get_job_status", {"status": 503})
    emulator.inject("get_workflow", {"status": 503})
    emulator.clear_faults("get_job_status")
    assert api.get(f"/job/{api.initiate()}/status").status_code == 200
    emulator.clear_faults()
    assert api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}").status_code == 200


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
    assert config.json() == {"job_duration": 0.0, "job_duration_jitter": 0.0, "upload_url_ttl": 3600.0}
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


# -- workflows files ----------------------------------------------------------------------------------------


def test_custom_workflows_file_with_defaults_and_emulator_section(tmp_path):
    path = tmp_path / "workflows.json"
    workflow = {
        "workflowId": "Custom0000000001",
        "name": "Custom",
        "jobPayloadSchema": {"workflow_input_abc": {"type": "str"}},
        "emulator": {"duration_seconds": 0, "results_data": {"answer": 42}},
    }
    path.write_text(json.dumps({"workflows": [workflow]}))
    with OpusEmulator(workflows=path, job_duration=30) as emulator:
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


# -- lifecycle ------------------------------------------------------------------------------------------------


def test_start_and_stop_repeatedly_leaves_no_thread_or_port_behind():
    threads_before = set(threading.enumerate())
    emulator = OpusEmulator()
    for _ in range(3):
        with emulator:
            urls = (emulator.url, emulator.storage_url)
            assert emulator.running
            assert requests.get(f"{emulator.url}/_emulator/health", timeout=TIMEOUT).status_code == 200
            with pytest.raises(RuntimeError, match="already running"):
                emulator.start()
        assert not any(port_is_open(url) for url in urls)
        assert set(threading.enumerate()) == threads_before
    with pytest.raises(RuntimeError, match="not running"):
        emulator.url  # noqa: B018
    emulator.stop()  # stopping a stopped emulator is a no-op


def test_start_on_a_busy_port_raises_and_cleans_up():
    threads_before = set(threading.enumerate())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        emulator = OpusEmulator(storage_port=busy.getsockname()[1])
        with pytest.raises(OSError):
            emulator.start()
    assert not emulator.running
    assert set(threading.enumerate()) == threads_before


def test_responses_are_not_held_back_by_nagle(api):
    api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}")
    started = time.monotonic()
    for _ in range(25):
        api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}")
    # Without TCP_NODELAY on the server side each response takes ~40 ms (Nagle plus delayed ACKs).
    assert (time.monotonic() - started) / 25 < 0.02


def test_pytest_plugin_fixture_points_the_airflow_connection_at_the_emulator(opus_emulator):
    assert opus_emulator.running
    connection = json.loads(os.environ["AIRFLOW_CONN_OPUS_DEFAULT"])
    assert connection == {"conn_type": "opus", "host": opus_emulator.url, "password": "emulator-service-key"}
    assert json.loads(opus_emulator.connection_json()) == connection


def test_the_emulator_imports_without_airflow():
    code = (
        "import sys; import airflow_provider_opus.emulator.__main__, airflow_provider_opus.emulator.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


# -- command line ---------------------------------------------------------------------------------------------


def test_cli_serves_until_sigterm_and_never_prints_the_key():
    key = "cli-secret-key-5d1e"
    env = {**os.environ, "OPUS_EMULATOR_SERVICE_KEY": key}
    command = [sys.executable, "-m", "airflow_provider_opus.emulator", "--port", "0", "--job-duration", "0.1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(6)]
        url = banner[0].split()[-1]
        assert banner[0].startswith("Opus emulator API:") and url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/_emulator/health", timeout=TIMEOUT).status_code == 200
        workflow = requests.get(f"{url}/workflow/{DEFAULT_WORKFLOW_ID}", headers={"x-service-key": key}, timeout=5)
        assert workflow.status_code == 200
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, stderr
    output = "".join(banner) + stdout + stderr
    assert key not in output
    (export,) = [line.strip() for line in output.splitlines() if line.strip().startswith("export ")]
    # The printed line is meant to be pasted into a shell where the key is in the environment.
    shell = subprocess.run(
        ["bash", "-c", f'{export}; printf %s "$AIRFLOW_CONN_OPUS_DEFAULT"'], env=env, capture_output=True, text=True
    )
    assert json.loads(shell.stdout) == {"conn_type": "opus", "host": url, "password": key}


def test_cli_rejects_an_invalid_workflows_file(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text("{}")
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_opus.emulator", "--workflows", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert 'expected an object with a "workflows" list' in result.stderr
