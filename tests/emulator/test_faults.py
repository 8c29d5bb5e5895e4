"""faults.py: injected faults (statuses, bad bodies, delays, dropped connections) on the API and storage listeners."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest
import requests

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from tests.emulator.helpers import TIMEOUT

pytestmark = pytest.mark.integration


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
            # aiohttp 3.10+ silently resends an idempotent request once after a disconnect, so a GET needs two
            # (3.9, the provider's floor, does not: there the hook's own retry takes over).
            emulator.inject("get_workflow", {"drop": "before"})
            if tuple(map(int, aiohttp.__version__.split(".")[:2])) < (3, 10):
                with pytest.raises(aiohttp.ServerDisconnectedError):
                    await session.get(f"{emulator.url}/workflow/{DEFAULT_WORKFLOW_ID}")
                return
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
