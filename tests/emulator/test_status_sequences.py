"""Scripted job status sequences, over real HTTP: set from Python, the admin API and the workflows file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from airflow_provider_opus.emulator import (
    DEFAULT_WORKFLOW_ID,
    REPORT_WORKFLOW_ID,
    OpusEmulator,
    WorkflowConfigError,
)

pytestmark = pytest.mark.integration

TIMEOUT = 5
#: The longest a test waits for a condition; a step of a scripted sequence lasts far less.
DEADLINE = 10.0
REQUIRED_INPUTS = {
    "workflow_input_we4tej0ly": {"value": "ACME GmbH", "type": "str"},
    "workflow_input_a0hk6ujuo": {"value": 0.8, "type": "float"},
    "workflow_input_h69vx5i4a": {"value": "https://files.opus.com/media/private/uploaded/inv.pdf", "type": "file"},
    "workflow_input_k3ayfjyh7": {"value": "2026-12-01", "type": "date"},
}
REPORT_INPUTS = {
    "workflow_input_rd7q2m1xa": {"value": "2026-01-01", "type": "date"},
    "workflow_input_rg4k8v0zn": {"value": "EMEA", "type": "str"},
}
SEQUENCE = ["QUEUED", "In Progress", "AWAITING REVIEW", "Completed"]

T = TypeVar("T")


class Client:
    """The Opus API and the admin routes of one emulator, over HTTP."""

    def __init__(self, emulator: OpusEmulator) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.headers["x-service-key"] = emulator.service_key

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.emulator.url + path, timeout=TIMEOUT)

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.session.post(self.emulator.url + path, json=body, timeout=TIMEOUT)

    def initiate(self, workflow_id: str = DEFAULT_WORKFLOW_ID) -> str:
        response = self.post("/job/initiate", {"workflowId": workflow_id, "title": "t", "description": "d"})
        assert response.status_code == 201, response.text
        return str(response.json()["jobExecutionId"])

    def execute(self, job_id: str, instance: dict[str, Any] | None = None) -> None:
        body = {"jobExecutionId": job_id, "jobPayloadSchemaInstance": REQUIRED_INPUTS if instance is None else instance}
        response = self.post("/job/execute", body)
        assert response.status_code == 201, response.text

    def run(self, workflow_id: str = DEFAULT_WORKFLOW_ID, instance: dict[str, Any] | None = None) -> str:
        job_id = self.initiate(workflow_id)
        self.execute(job_id, instance)
        return job_id

    def status(self, job_id: str) -> str:
        response = self.get(f"/job/{job_id}/status")
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    def results(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/job/{job_id}/results")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def audit(self, job_id: str) -> list[dict[str, str]]:
        trail: list[dict[str, str]] = self.get(f"/job/{job_id}/audit").json()["auditTrail"]
        return trail

    def audit_actions(self, job_id: str) -> list[str]:
        return [entry["action"] for entry in self.audit(job_id)]

    def set_sequence(self, workflow_id: str, statuses: Any) -> requests.Response:
        # Admin routes need no service key; send none, as a DAG steering the emulator would.
        url = f"{self.emulator.url}/_emulator/workflows/{workflow_id}/status-sequence"
        return requests.post(url, json={"statuses": statuses}, timeout=TIMEOUT)

    def get_sequence(self, workflow_id: str) -> requests.Response:
        url = f"{self.emulator.url}/_emulator/workflows/{workflow_id}/status-sequence"
        return requests.get(url, timeout=TIMEOUT)

    def wait_for_status(self, job_id: str, expected: str) -> None:
        wait_until(lambda: self.status(job_id) == expected, f"job {job_id} to report {expected!r}")

    def observe(self, job_id: str, final: str) -> list[str]:
        """Poll until the job reports ``final``; return each distinct status seen, in order."""
        seen: list[str] = []

        def reached_final() -> bool:
            status = self.status(job_id)
            if not seen or seen[-1] != status:
                seen.append(status)
            return status == final

        wait_until(reached_final, lambda: f"job {job_id} to reach {final!r} (seen: {seen})", interval=0.005)
        return seen


@pytest.fixture
def client(emulator: OpusEmulator) -> Iterator[Client]:
    api = Client(emulator)
    yield api
    api.session.close()


def wait_until(condition: Callable[[], T], what: str | Callable[[], str], interval: float = 0.02) -> T:
    """Poll ``condition`` until it is truthy; fail after :data:`DEADLINE` seconds, saying ``what`` it waited for."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {DEADLINE} s waiting for {what if isinstance(what, str) else what()}")
        time.sleep(interval)


def parse_iso(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def workflows_file(tmp_path: Path, emulator_section: dict[str, Any]) -> Path:
    """Write "Scripted00000001" with this emulator section and "Plain000000000001" with it minus the sequence."""
    schema = {"workflow_input_abc": {"type": "str"}}
    plain_section = {key: value for key, value in emulator_section.items() if key != "status_sequence"}
    workflows = [
        {
            "workflowId": "Scripted00000001",
            "name": "Scripted",
            "jobPayloadSchema": schema,
            "emulator": emulator_section,
        },
        {"workflowId": "Plain000000000001", "name": "Plain", "jobPayloadSchema": schema, "emulator": plain_section},
    ]
    path = tmp_path / "workflows.json"
    path.write_text(json.dumps({"workflows": workflows}))
    return path


# -- the sequence over a job's run --------------------------------------------------------------------------


def test_statuses_appear_in_order_while_the_job_runs_and_the_final_one_sticks(client, emulator):
    # Three non-final statuses share 1.5 s: 0.5 s each, plenty for 5 ms polling to see every one.
    emulator.configure(job_duration=1.5)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, SEQUENCE)
    job_id = client.initiate()
    assert client.status(job_id) == "NOT STARTED"
    client.execute(job_id)

    # While the job runs, results are empty and carry the current scripted status.
    assert client.results(job_id) == {"jobExecutionId": job_id, "status": "QUEUED", "results": {}}
    assert client.observe(job_id, "Completed") == SEQUENCE

    # The final status sticks, and the job has results because "Completed" is COMPLETED in another case.
    for _ in range(20):
        assert client.status(job_id) == "Completed"
    results = client.results(job_id)
    assert results["status"] == "Completed"
    assert results["results"]["summary"] == "Job executed successfully."
    assert results["results"]["data"]["inputs_received"] == len(REQUIRED_INPUTS)
    (job,) = emulator.jobs()
    assert job["status"] == "Completed"

    trail = client.audit(job_id)
    assert [entry["action"] for entry in trail] == [
        "Job initiated",
        "Job execution started",
        "Job status: QUEUED",
        "Job status: In Progress",
        "File validated and processed",  # halfway, which is inside "In Progress" here
        "Job status: AWAITING REVIEW",
        "Job status: Completed",
        "Job completed successfully",
    ]
    # Each status change is logged when it happened: the steps split the run into equal thirds.
    executed, finishes = parse_iso(job["executedAt"]), parse_iso(job["finishesAt"])
    changes = [parse_iso(entry["timestamp"]) for entry in trail if entry["action"].startswith("Job status: ")]
    expected = [executed, executed + 0.5, executed + 1.0, finishes]
    assert changes == pytest.approx(expected, abs=0.002)


def test_a_non_final_completed_has_no_results_until_the_final_status(client, emulator):
    emulator.configure(job_duration=30)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["COMPLETED", "CANCELLED"])
    job_id = client.run()
    assert client.status(job_id) == "COMPLETED"
    assert client.results(job_id) == {"jobExecutionId": job_id, "status": "COMPLETED", "results": {}}


@pytest.mark.parametrize("final", ["COMPLETED", "completed", "Completed", "  Completed\t"])
def test_a_final_completed_in_any_case_has_results(client, emulator, final):
    emulator.configure(job_duration=0.05)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["Queued", final])
    job_id = client.run()
    client.wait_for_status(job_id, final)  # reported exactly as scripted, spaces included
    results = client.results(job_id)
    assert results["status"] == final
    assert results["results"]["outputFiles"] == [f"{emulator.storage_url}/media/private/generated/output_{job_id}.pdf"]
    assert client.audit_actions(job_id)[-2:] == [f"Job status: {final}", "Job completed successfully"]


@pytest.mark.parametrize("final", ["FAILED", "Failed", "CANCELLED", "Done", "COMPLETED WITH ERRORS", "IN PROGRESS"])
def test_any_other_final_status_has_no_results(client, emulator, final):
    emulator.configure(job_duration=0.05)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", final])
    job_id = client.run()
    wait_until(lambda: client.audit_actions(job_id)[-1] == f"Job status: {final}", f"the final {final!r}")
    assert client.status(job_id) == final
    assert client.results(job_id) == {"jobExecutionId": job_id, "status": final, "results": {}}
    assert "Job completed successfully" not in client.audit_actions(job_id)


def test_a_job_that_fails_reports_the_scripted_statuses_then_failed(client, emulator):
    # 0.75 s a status: with 0.2 s in all, a loaded CI machine's polls (every 5 ms) missed RUNNING once.
    emulator.configure(job_duration=1.5)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", "RUNNING", "COMPLETED"])
    instance = {k: v for k, v in REQUIRED_INPUTS.items() if k != "workflow_input_a0hk6ujuo"}
    job_id = client.run(instance=instance)
    assert client.observe(job_id, "FAILED") == ["QUEUED", "RUNNING", "FAILED"]
    assert client.results(job_id)["results"] == {}
    assert client.audit_actions(job_id)[-2:] == [
        "Job status: FAILED",
        "Job failed: required input 'Threshold' (workflow_input_a0hk6ujuo) was not provided",
    ]


def test_a_one_status_sequence_reports_the_final_status_at_once(client, emulator):
    emulator.configure(job_duration=30)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["completed"])
    job_id = client.run()
    assert client.status(job_id) == "completed"
    assert client.results(job_id)["results"]["summary"] == "Job executed successfully."
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["On Hold"])
    held = client.run()
    assert client.status(held) == "On Hold"
    assert client.results(held)["results"] == {}


def test_repeated_statuses_are_one_change_that_lasts_longer(client, emulator):
    emulator.configure(job_duration=0.3)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", "QUEUED", "RUNNING", "COMPLETED"])
    job_id = client.run()
    assert client.observe(job_id, "COMPLETED") == ["QUEUED", "RUNNING", "COMPLETED"]
    trail = client.audit(job_id)
    changes = {e["action"]: parse_iso(e["timestamp"]) for e in trail if e["action"].startswith("Job status: ")}
    assert list(changes) == ["Job status: QUEUED", "Job status: RUNNING", "Job status: COMPLETED"]
    (job,) = emulator.jobs()
    executed = parse_iso(job["executedAt"])
    assert changes["Job status: RUNNING"] - executed == pytest.approx(0.2, abs=0.002)


def test_a_sequence_paced_by_checks_reports_each_status_for_that_many_checks(client, emulator):
    # A job far too long to advance by time: only status checks move it on.
    emulator.configure(job_duration=3600)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, SEQUENCE, checks_per_status=2)
    job_id = client.run()
    # Results and audit reads are not status checks: they do not move the job on.
    assert client.results(job_id)["results"] == {}
    client.audit(job_id)
    assert [client.status(job_id) for _ in range(8)] == [
        "QUEUED",
        "QUEUED",
        "In Progress",
        "In Progress",
        "AWAITING REVIEW",
        "AWAITING REVIEW",
        "Completed",
        "Completed",
    ]
    assert client.results(job_id)["results"]["summary"]


def test_checks_per_status_via_the_admin_route_and_its_bounds(client, emulator):
    url = f"{emulator.url}/_emulator/workflows/{DEFAULT_WORKFLOW_ID}/status-sequence"
    emulator.configure(job_duration=3600)
    response = requests.post(url, json={"statuses": ["QUEUED", "COMPLETED"], "checks_per_status": 1}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    job_id = client.run()
    assert [client.status(job_id) for _ in range(3)] == ["QUEUED", "COMPLETED", "COMPLETED"]
    for bad in (0, -1, 1.5, "2", True):
        response = requests.post(
            url, json={"statuses": ["QUEUED", "COMPLETED"], "checks_per_status": bad}, timeout=TIMEOUT
        )
        assert response.status_code == 400, bad
        assert "checks_per_status must be a positive int or null" in response.text
    # A sequence set again without it is paced by time again.
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", "COMPLETED"])
    job_id = client.run()
    assert [client.status(job_id) for _ in range(3)] == ["QUEUED"] * 3


def test_a_sequence_applies_per_workflow_and_as_of_execute(client, emulator):
    emulator.configure(job_duration=0.1)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", "FIRST DONE"])
    first = client.run()
    waiting = client.initiate()  # initiated under the first script, executed under the second
    report = client.run(REPORT_WORKFLOW_ID, REPORT_INPUTS)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["PENDING", "SECOND DONE"])
    client.execute(waiting)
    second = client.run()
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, None)
    default = client.run()

    for job_id, final in [(first, "FIRST DONE"), (waiting, "SECOND DONE"), (second, "SECOND DONE")]:
        client.wait_for_status(job_id, final)
    for job_id in (report, default):
        client.wait_for_status(job_id, "COMPLETED")
    assert "Job status: QUEUED" in client.audit_actions(first)
    assert "Job status: PENDING" in client.audit_actions(waiting)
    for job_id in (report, default):
        assert not any(action.startswith("Job status: ") for action in client.audit_actions(job_id))


# -- the default course is unchanged --------------------------------------------------------------------


def test_without_a_sequence_jobs_run_as_before(client, emulator):
    assert emulator.status_sequence(DEFAULT_WORKFLOW_ID) is None
    assert client.get_sequence(REPORT_WORKFLOW_ID).json() == {"workflowId": REPORT_WORKFLOW_ID, "statuses": None}
    job_id = client.initiate()
    assert client.status(job_id) == "NOT STARTED"
    client.execute(job_id)
    assert client.observe(job_id, "COMPLETED") == ["IN PROGRESS", "COMPLETED"]
    assert client.results(job_id)["results"]["data"]["verdict"] == "PASS"
    assert client.audit_actions(job_id) == [
        "Job initiated",
        "Job execution started",
        "File validated and processed",
        "Job completed successfully",
    ]

    failing = client.run(instance={k: v for k, v in REQUIRED_INPUTS.items() if k != "workflow_input_a0hk6ujuo"})
    assert client.observe(failing, "FAILED") == ["IN PROGRESS", "FAILED"]
    assert client.results(failing)["results"] == {}
    assert client.audit_actions(failing) == [
        "Job initiated",
        "Job execution started",
        "Job failed: required input 'Threshold' (workflow_input_a0hk6ujuo) was not provided",
    ]


def test_set_job_status_still_overrides_a_scripted_job(client, emulator):
    emulator.configure(job_duration=30)
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", "COMPLETED"])
    job_id = client.run()
    emulator.set_job_status(job_id, "CANCELLED")
    assert client.status(job_id) == "CANCELLED"
    assert client.audit_actions(job_id)[-1] == "Job status set to CANCELLED (emulator override)"
    assert client.results(job_id)["results"] == {}


# -- the three ways to set it, and reset ------------------------------------------------------------------


def test_python_api_sets_returns_and_clears_a_sequence(emulator):
    assert emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ("QUEUED", "COMPLETED")) == ["QUEUED", "COMPLETED"]
    assert emulator.status_sequence(DEFAULT_WORKFLOW_ID) == ["QUEUED", "COMPLETED"]
    assert emulator.status_sequence(REPORT_WORKFLOW_ID) is None
    assert emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, None) is None
    assert emulator.status_sequence(DEFAULT_WORKFLOW_ID) is None
    with pytest.raises(LookupError, match="Workflow nope not found"):
        emulator.set_status_sequence("nope", ["COMPLETED"])
    with pytest.raises(LookupError, match="Workflow nope not found"):
        emulator.status_sequence("nope")


def test_admin_route_sets_reads_and_clears_a_sequence(client, emulator):
    emulator.configure(job_duration=0.6)
    answer = client.set_sequence(DEFAULT_WORKFLOW_ID, ["Pending", "Processing", "Completed"])
    assert (answer.status_code, answer.json()) == (
        200,
        {"workflowId": DEFAULT_WORKFLOW_ID, "statuses": ["Pending", "Processing", "Completed"]},
    )
    assert client.get_sequence(DEFAULT_WORKFLOW_ID).json()["statuses"] == ["Pending", "Processing", "Completed"]
    assert emulator.status_sequence(DEFAULT_WORKFLOW_ID) == ["Pending", "Processing", "Completed"]
    job_id = client.run()
    assert client.observe(job_id, "Completed") == ["Pending", "Processing", "Completed"]
    assert client.results(job_id)["results"] != {}

    cleared = client.set_sequence(DEFAULT_WORKFLOW_ID, None)
    assert (cleared.status_code, cleared.json()) == (200, {"workflowId": DEFAULT_WORKFLOW_ID, "statuses": None})
    assert emulator.status_sequence(DEFAULT_WORKFLOW_ID) is None
    assert client.observe(client.run(), "COMPLETED") == ["IN PROGRESS", "COMPLETED"]

    for response in (client.set_sequence("nope", ["COMPLETED"]), client.get_sequence("nope")):
        assert (response.status_code, response.json()) == (404, {"message": "Workflow nope not found"})
    assert {entry["endpoint"] for entry in emulator.requests() if "status-sequence" in entry["path"]} == {"admin"}


def test_workflows_file_sets_a_sequence_that_run_time_settings_override(tmp_path):
    path = workflows_file(tmp_path, {"duration_seconds": 0.3, "status_sequence": ["QUEUED", "RUNNING", "Done"]})
    with OpusEmulator(workflows=path, job_duration=30, api="legacy") as emulator:
        client = Client(emulator)
        assert "emulator" not in client.get("/workflow/Scripted00000001").json()
        assert emulator.status_sequence("Scripted00000001") == ["QUEUED", "RUNNING", "Done"]
        assert emulator.status_sequence("Plain000000000001") is None
        instance = {"workflow_input_abc": {"value": "x", "type": "str"}}
        job_id = client.run("Scripted00000001", instance)
        assert client.observe(job_id, "Done") == ["QUEUED", "RUNNING", "Done"]
        assert client.results(job_id)["results"] == {}  # "Done" is not COMPLETED
        plain = client.run("Plain000000000001", instance)
        assert client.observe(plain, "COMPLETED") == ["IN PROGRESS", "COMPLETED"]

        # A run-time sequence beats the file's; clearing it, or reset(), brings the file's back.
        emulator.set_status_sequence("Scripted00000001", ["COMPLETED"])
        assert client.status(client.run("Scripted00000001", instance)) == "COMPLETED"
        assert emulator.set_status_sequence("Scripted00000001", None) == ["QUEUED", "RUNNING", "Done"]
        emulator.set_status_sequence("Scripted00000001", ["COMPLETED"])
        emulator.reset()
        assert emulator.status_sequence("Scripted00000001") == ["QUEUED", "RUNNING", "Done"]
        assert client.status(client.run("Scripted00000001", instance)) == "QUEUED"
        client.session.close()


@pytest.mark.parametrize("how", ["python", "admin"])
def test_reset_clears_run_time_sequences(client, emulator, how):
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", "COMPLETED"])
    emulator.set_status_sequence(REPORT_WORKFLOW_ID, ["QUEUED", "COMPLETED"])
    if how == "python":
        emulator.reset()
    else:
        assert requests.post(f"{emulator.url}/_emulator/reset", timeout=TIMEOUT).status_code == 204
    assert emulator.status_sequence(DEFAULT_WORKFLOW_ID) is None
    assert emulator.status_sequence(REPORT_WORKFLOW_ID) is None
    assert client.get_sequence(DEFAULT_WORKFLOW_ID).json()["statuses"] is None
    job_id = client.run()
    assert client.status(job_id) == "IN PROGRESS"


# -- validation ---------------------------------------------------------------------------------------------

INVALID = [
    ([], "statuses must not be empty"),
    ("COMPLETED", "statuses must be a list of status strings, got str"),
    ({"0": "COMPLETED"}, "statuses must be a list of status strings, got dict"),
    (7, "statuses must be a list of status strings, got int"),
    (["QUEUED", ""], "statuses[1] must be a non-empty string, got ''"),
    (["QUEUED", "   "], "statuses[1] must be a non-empty string, got '   '"),
    ([None, "COMPLETED"], "statuses[0] must be a non-empty string, got None"),
    (["QUEUED", 1], "statuses[1] must be a non-empty string, got 1"),
    ([["QUEUED", 0.2], "COMPLETED"], "statuses[0] must be a non-empty string, got ['QUEUED', 0.2]"),
]


@pytest.mark.parametrize(("statuses", "message"), INVALID)
def test_python_api_rejects_an_invalid_sequence_and_keeps_the_old_one(emulator, statuses, message):
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["KEPT", "COMPLETED"])
    with pytest.raises(ValueError) as info:
        emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, statuses)
    assert str(info.value).startswith(message)
    assert emulator.status_sequence(DEFAULT_WORKFLOW_ID) == ["KEPT", "COMPLETED"]


@pytest.mark.parametrize(("statuses", "message"), INVALID)
def test_admin_route_rejects_an_invalid_sequence_with_400(client, emulator, statuses, message):
    response = client.set_sequence(DEFAULT_WORKFLOW_ID, statuses)
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
    assert emulator.status_sequence(DEFAULT_WORKFLOW_ID) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Invalid request: statuses: Field required"),
        ({"statuses": ["COMPLETED"], "status": "x"}, "Invalid request: status: Extra inputs are not permitted"),
    ],
)
def test_admin_route_rejects_a_malformed_body(emulator, body, message):
    url = f"{emulator.url}/_emulator/workflows/{DEFAULT_WORKFLOW_ID}/status-sequence"
    response = requests.post(url, json=body, timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (400, {"message": message})


@pytest.mark.parametrize(
    ("sequence", "message"),
    [
        ([], "status_sequence must not be empty"),
        ("COMPLETED", "status_sequence must be a list of status strings, got str"),
        (["QUEUED", ""], "status_sequence[1] must be a non-empty string, got ''"),
        (["QUEUED", 3], "status_sequence[1] must be a non-empty string, got 3"),
    ],
)
def test_workflows_file_rejects_an_invalid_sequence(tmp_path, sequence, message):
    path = workflows_file(tmp_path, {"status_sequence": sequence})
    with pytest.raises(WorkflowConfigError) as info:
        OpusEmulator(workflows=path)
    assert str(info.value).startswith(f"{path}: workflow 'Scripted00000001': emulator: {message}")


def test_workflows_file_accepts_null_as_no_sequence(tmp_path):
    emulator = OpusEmulator(workflows=workflows_file(tmp_path, {"status_sequence": None}), api="legacy")
    assert emulator.status_sequence("Scripted00000001") is None
