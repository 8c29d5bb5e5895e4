"""hooks/opus_async.py: OpusAsyncHook against the emulator over real loopback HTTP: reads, retries, timeouts, keys
(the sessions it shares: test_async_sessions.py)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_opus.connection_cache import connection_settings_cache
from airflow_provider_opus.exceptions import (
    OpusConnectionConfigError,
    OpusNotFoundError,
    OpusResponseError,
    OpusTransportError,
)
from airflow_provider_opus.hooks.opus import OpusAsyncHook
from airflow_provider_opus.transport import MAX_RESPONSE_BYTES
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import DRIPPED_ANSWER, RawServer, closed_port, fast_hook, http_response, start_job

pytestmark = pytest.mark.integration


async def test_async_hook_reads_a_job(emulator):
    emulator.configure(job_duration=1.0)  # still running at the first read, however slow the first call
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        assert await hook.get_job_status(job_id) == "IN PROGRESS"
        session = hook.session
        deadline = time.monotonic() + 10
        while await hook.get_job_status(job_id) != "COMPLETED" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert hook.session is session  # one session, reused
        results = await hook.get_job_results(job_id)
        audit = await hook.get_job_audit_log(job_id)
    assert results["results"]["data"]["verdict"] == "PASS"
    assert audit[-1]["action"] == "Job completed successfully"
    assert hook.session is session and not session.closed  # the loop's, kept warm for the next hooks


async def test_async_hook_retries_503_and_a_dropped_connection(emulator):
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    emulator.inject("get_job_status", {"status": 503}, {"drop": "after"}, {"status": 429, "retry_after": "0"})
    async with OpusAsyncHook(retry_delay=0.01, retry_limit=4) as hook:
        assert await hook.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert [r["status"] for r in emulator.requests("get_job_status")][-1] == 200


async def test_async_hook_gives_up_with_own_errors(emulator, monkeypatch):
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        with pytest.raises(OpusNotFoundError, match="GET /job/missing/status returned HTTP 404"):
            await hook.get_job_status("missing")
    conn = {"conn_type": "opus", "host": f"http://127.0.0.1:{closed_port()}", "password": SERVICE_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    connection_settings_cache.clear()  # this loop keeps the settings read above for a minute (connection_cache.py)
    async with OpusAsyncHook(retry_delay=0.01, retry_limit=1) as hook:
        with pytest.raises(OpusTransportError) as info:
            await hook.get_job_status("x")
    assert info.value.request_sent is False
    assert SERVICE_KEY not in str(info.value)


async def test_async_read_timeout_is_retried_for_gets_on_a_new_connection(emulator):
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    emulator.inject("get_job_status", {"delay": 1.0})
    async with OpusAsyncHook(timeout=0.3, retry_delay=0.01) as hook:
        assert await hook.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
    # The slow answer is recorded when the emulator finishes sending it, after the retry's.
    deadline = time.monotonic() + 30
    while len(emulator.requests("get_job_status")) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    slow, *retries = sorted(emulator.requests("get_job_status"), key=lambda r: r["fault"] is None)
    assert slow["fault"] == {"delay": 1.0} and retries
    # A connection that timed out must not carry the retry (aiohttp 3.9.0 reused it: hence the floor).
    assert all(retry["client_port"] != slow["client_port"] for retry in retries)


@pytest.mark.parametrize("pasted", [SERVICE_KEY + "\n", f"  {SERVICE_KEY}\r\n"])
async def test_async_key_with_surrounding_whitespace_is_trimmed(emulator, monkeypatch, pasted):
    conn = {"conn_type": "opus", "host": emulator.url, "password": pasted}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        assert await hook.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")


async def test_async_key_with_a_control_character_is_a_connection_error(emulator, monkeypatch):
    conn = {"conn_type": "opus", "host": emulator.url, "password": SERVICE_KEY[:8] + "\n" + SERVICE_KEY[8:]}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        with pytest.raises(OpusConnectionConfigError, match="control or non-ASCII character at position 9") as info:
            await hook.get_job_status("x")
    assert SERVICE_KEY[:8] not in str(info.value) and SERVICE_KEY[8:] not in str(info.value)
    assert emulator.requests("get_job_status") == []


@pytest.mark.parametrize(
    ("results", "field"),
    [
        (["a"], "results is list ['a'], expected an object"),
        ({"outputFiles": "https://f/out.pdf"}, "results.outputFiles is 'https://f/out.pdf', expected a list"),
    ],
)
async def test_async_results_answer_of_the_wrong_shape_names_the_field(emulator, results, field):
    body = {"jobExecutionId": "j", "status": "COMPLETED", "results": results}
    emulator.inject("get_job_results", {"status": 200, "json": body})
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        with pytest.raises(OpusResponseError, match="GET /job/j/results") as info:
            await hook.get_job_results("j")
    assert field in str(info.value)


# -- the connection's timeout bounds a whole call; an answer is read up to a limit ----------------


async def test_a_dripping_server_cannot_stretch_a_call_past_the_timeout(monkeypatch):
    def drip(method: str, path: str, send) -> None:
        send(DRIPPED_ANSWER, interval=0.5)  # about 100 s, no read waiting longer than 0.5 s

    with RawServer(drip) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", server.connection_json(timeout=2))
        async with OpusAsyncHook(retry_limit=0) as hook:
            started = time.monotonic()
            with pytest.raises(OpusTransportError) as info:
                await hook.get_job_status("j1")
            elapsed = time.monotonic() - started
    assert str(info.value) == "Opus GET /job/j1/status failed (the response took longer than 2 s)"
    assert info.value.request_sent is True
    assert elapsed < 50  # the whole drip lasts about 100 s: see the sync twin


async def test_an_answer_over_the_size_limit_is_refused_unread(monkeypatch):
    sent = []

    def huge(method: str, path: str, send) -> None:
        send(http_response(b"", content_length=False))  # no size up front: the body runs until the connection ends
        sent.extend(True for _ in range(4 * MAX_RESPONSE_BYTES // 2**20) if send(b" " * 2**20))

    with RawServer(huge) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", server.connection_json())
        async with OpusAsyncHook(retry_limit=0) as hook:
            with pytest.raises(OpusResponseError, match=f"the response was larger than {MAX_RESPONSE_BYTES} bytes"):
                await hook.get_job_status("j1")
    assert len(sent) < 4 * MAX_RESPONSE_BYTES // 2**20  # the hook stopped reading and hung up
