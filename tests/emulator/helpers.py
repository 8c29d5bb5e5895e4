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
    from collections.abc import Iterator

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
