"""callbacks.py: a job's result POSTed to its loopback callbackUrl when it ends, retried; the built-in receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.emulator.callbacks import CALLBACK_ATTEMPTS
from tests.emulator.helpers import REQUIRED_INPUTS, TIMEOUT, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration


class Receiver:
    """A loopback HTTP server that answers the first ``failures`` POSTs with 503, then 200, and keeps the bodies."""

    def __init__(self, failures: int = 0, status: int = 503) -> None:
        self.failures, self.status = failures, status
        self.bodies: list[Any] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.status if len(receiver.answers) < receiver.failures else 200
                receiver.answers.append(status)
                receiver.bodies.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/opus/callback"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(failures=2) as server:
        yield server


def _deliveries(current, job_id: str) -> list[dict[str, Any]]:
    return [entry for entry in current.callback_deliveries() if entry["jobExecutionId"] == job_id]


def test_a_completed_job_posts_its_results_to_the_built_in_receiver(capi, current):
    job_id = capi.run(REQUIRED_INPUTS)
    assert current.callbacks() == []  # not before it ends
    (received,) = wait_for(current.callbacks)
    body = received["body"]
    assert body["jobExecutionId"] == job_id and body["status"] == "COMPLETED"
    assert body["jobResultsPayloadSchema"] == capi.get(f"/job/{job_id}/results").json()["jobResultsPayloadSchema"]
    assert received["contentType"] == "application/json"
    (delivery,) = _deliveries(current, job_id)
    assert (delivery["attempt"], delivery["outcome"], delivery["status"], delivery["url"]) == (
        1,
        "delivered",
        200,
        current.callback_url,
    )
    listed = requests.get(current.callback_url, timeout=TIMEOUT).json()["callbacks"]
    assert [entry["body"] for entry in listed] == [body]
    admin = requests.get(f"{current.url}/_emulator/callback-deliveries", timeout=TIMEOUT).json()["deliveries"]
    assert admin == current.callback_deliveries()
    current.reset()
    assert current.callbacks() == [] and current.callback_deliveries() == []


def test_a_failed_job_posts_its_status_without_results(capi, current):
    job_id = capi.run({})
    (received,) = wait_for(current.callbacks)
    assert received["body"] == {"jobExecutionId": job_id, "status": "FAILED"}


def test_a_failing_receiver_is_retried_until_it_answers(capi, current, receiver):
    job_id = capi.initiate()
    assert capi.execute(job_id, REQUIRED_INPUTS, callbackUrl=receiver.url).status_code == 201
    deliveries = wait_for(lambda: [entry for entry in _deliveries(current, job_id) if entry["outcome"] == "delivered"])
    assert receiver.answers == [503, 503, 200]
    assert [body["jobExecutionId"] for body in receiver.bodies] == [job_id] * 3
    attempts = _deliveries(current, job_id)
    assert [(entry["attempt"], entry["status"]) for entry in attempts] == [(1, 503), (2, 503), (3, 200)]
    assert attempts[0]["outcome"] == "failed: HTTP 503" and deliveries[0]["attempt"] == 3


def test_a_receiver_that_never_answers_well_gets_a_few_attempts_only(capi, current):
    with Receiver(failures=99, status=500) as failing:
        job_id = capi.initiate()
        capi.execute(job_id, REQUIRED_INPUTS, callbackUrl=failing.url)
        wait_for(lambda: len(_deliveries(current, job_id)) == CALLBACK_ATTEMPTS)
        # Give a fourth attempt the time it would need, to see there is none.
        wait_for(lambda: len(failing.answers) > CALLBACK_ATTEMPTS, timeout=1.0)
        assert failing.answers == [500] * CALLBACK_ATTEMPTS
    unreachable = capi.initiate()
    capi.execute(unreachable, REQUIRED_INPUTS, callbackUrl=failing.url)  # closed by now
    attempts = wait_for(
        lambda: len(_deliveries(current, unreachable)) == CALLBACK_ATTEMPTS and _deliveries(current, unreachable)
    )
    assert all(entry["outcome"].startswith("failed: URLError") and entry["status"] is None for entry in attempts)


def test_a_callback_to_another_host_is_never_sent(capi, current, caplog):
    caplog.set_level("WARNING", logger="airflow_provider_opus.emulator.callbacks")
    job_id = capi.initiate()
    capi.execute(job_id, REQUIRED_INPUTS, callbackUrl="https://hooks.example.com/opus")
    (skipped,) = wait_for(lambda: _deliveries(current, job_id))
    assert (skipped["attempt"], skipped["outcome"], skipped["status"]) == (0, "skipped: not a loopback host", None)
    assert f"not sending the callback of job {job_id} to https://hooks.example.com/opus" in caplog.text


def test_a_forced_end_and_a_script_send_the_callback_once(capi, current):
    current.configure(job_duration=30)
    job_id = capi.run(REQUIRED_INPUTS)
    current.set_job_status(job_id, "COMPLETED")
    (received,) = wait_for(current.callbacks)
    assert received["body"]["status"] == "COMPLETED" and "jobResultsPayloadSchema" in received["body"]
    current.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", "Completed"], checks_per_status=1)
    scripted = capi.run(REQUIRED_INPUTS)
    assert wait_for(lambda: len(current.callbacks()) > 1, timeout=0.3) is False  # paced by checks: no end yet
    assert capi.status(scripted) == "QUEUED"
    # Its one QUEUED check done, the job has reached its final status: the callback goes without another check.
    (body,) = wait_for(
        lambda: [entry["body"] for entry in current.callbacks() if entry["body"]["jobExecutionId"] == scripted]
    )
    assert body["status"] == "Completed" and "jobResultsPayloadSchema" in body
    assert wait_for(lambda: len(current.callbacks()) > 2, timeout=0.3) is False  # each job's callback once
    assert [entry["attempt"] for entry in current.callback_deliveries()] == [1, 1]


def test_the_receiver_keeps_a_body_that_is_not_json(current):
    requests.post(current.callback_url, data=b"plain text", headers={"content-type": "text/plain"}, timeout=TIMEOUT)
    assert [(entry["body"], entry["contentType"]) for entry in current.callbacks()] == [("plain text", "text/plain")]


def test_legacy_jobs_send_no_callback(api, emulator):
    body = {"jobExecutionId": api.initiate(), "jobPayloadSchemaInstance": REQUIRED_INPUTS}
    assert api.post("/job/execute", {**body, "callbackUrl": emulator.callback_url}).status_code == 201
    assert api.wait_until_finished(body["jobExecutionId"]) == "COMPLETED"
    assert wait_for(emulator.callbacks, timeout=0.5) == [] and emulator.callback_deliveries() == []
