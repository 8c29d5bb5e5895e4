"""What the emulator's tests share: a client that sends the key, and valid inputs of the default workflow."""

from __future__ import annotations

import re
import socket
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, OpusEmulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

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


def fresh_api(server: OpusEmulator) -> Iterator[Api]:
    """Yield a client of a test module's own emulator, which is reset before and after the test."""
    server.reset()
    client = Api(server)
    yield client
    client.session.close()
    server.reset()


def parse_iso(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def port_is_open(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


#: Valid inputs of version 2 of the bundled versioned workflow (ContractCheck001).
CONTRACT_V2_INPUTS = {
    "workflow_input_cp7x2k9qa": {"value": "ACME GmbH", "type": "str", "displayName": "Counterparty"},
    "workflow_input_jr5w0p4ye": {"value": "DE", "type": "str", "displayName": "Jurisdiction"},
}
#: Valid inputs of the bundled v2 graph workflow, as the live platform wants them.
FILE_ITEMS = {"id": "file", "variable_name": "file", "allowed_types": [{"type": "file"}]}
GRAPH_INPUTS = {
    "workflow_input_tp4k9d2wq": {"value": "Heat pumps", "type": "str"},
    "workflow_input_pm8r3x6zn": {"value": '{"depth": 2}', "type": "json_string"},
    "workflow_input_sr2v7b5kj": {"value": [EXTERNAL_FILE], "type": "array", "typeDefinition": FILE_ITEMS},
}


class CurrentApi(Api):
    """A client of the current generation: execute sends a callbackUrl (the emulator's own receiver)."""

    def initiate(self, workflow_id: str = DEFAULT_WORKFLOW_ID, **fields: Any) -> str:
        response = self.post("/job/initiate", {"workflowId": workflow_id, **fields})
        assert response.status_code == 201, response.text
        return str(response.json()["jobExecutionId"])

    def execute(self, job_id: str, instance: Any, **fields: Any) -> requests.Response:
        body = {"jobExecutionId": job_id, "jobPayloadSchemaInstance": instance}
        return self.post("/job/execute", {**body, "callbackUrl": self.emulator.callback_url, **fields})

    def upload_url(self, extension: str = ".pdf", scope: str | None = None, **fields: Any) -> requests.Response:
        body = {"fileExtension": extension, **({} if scope is None else {"accessScope": scope}), **fields}
        return self.post("/job/file/upload", body)

    def wait_until_finished(self, job_id: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while (status := self.status(job_id)) not in ("COMPLETED", "FAILED") and time.monotonic() < deadline:
            time.sleep(0.02)
        return status

    def audit(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/job/{job_id}/audit")
        assert response.status_code == 200, response.text
        return dict(response.json())


def wait_for(condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Return the first truthy value of ``condition()``, polled until ``timeout`` (then its last value)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value
