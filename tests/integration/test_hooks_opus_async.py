"""hooks/opus_async.py: OpusAsyncHook against the emulator over real loopback HTTP: reads, shared sessions, retries."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_opus.exceptions import OpusAuthError, OpusNotFoundError, OpusTransportError
from airflow_provider_opus.hooks.opus import OpusAsyncHook
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import closed_port, fast_hook, start_job

pytestmark = pytest.mark.integration


async def test_async_hook_reads_a_job(emulator):
    job_id = start_job(fast_hook())
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        assert await hook.get_job_status(job_id) == "IN PROGRESS"
        session = hook._session
        for _ in range(40):
            if await hook.get_job_status(job_id) == "COMPLETED":
                break
            time.sleep(0.02)
        assert hook._session is session  # one session, reused
        results = await hook.get_job_results(job_id)
        audit = await hook.get_job_audit_log(job_id)
    assert results["results"]["data"]["verdict"] == "PASS"
    assert audit[-1]["action"] == "Job completed successfully"
    assert hook._session is None


async def test_async_hooks_on_one_loop_share_one_session_and_its_connection(emulator):
    job_id = start_job(fast_hook())
    hooks = [OpusAsyncHook(retry_delay=0.01) for _ in range(20)]
    for hook in hooks:
        assert await hook.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert len({id(hook._session) for hook in hooks}) == 1
    session = hooks[0]._session
    for hook in hooks[:-1]:
        await hook.close()
    assert not session.closed  # the last hook still holds it
    assert await hooks[-1].get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
    polls = emulator.requests("get_job_status")[-21:]
    assert len({poll["client_port"] for poll in polls}) == 1  # 21 polls, one kept-alive connection
    await hooks[-1].close()
    assert session.closed


async def test_async_hooks_with_different_keys_never_share_a_session(emulator, monkeypatch):
    other = {"conn_type": "opus", "host": emulator.url, "password": SERVICE_KEY + "-revoked"}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_OTHER", json.dumps(other))
    job_id = start_job(fast_hook())
    async with OpusAsyncHook(retry_delay=0.01) as good, OpusAsyncHook("opus_other", retry_delay=0.01) as revoked:
        assert await good.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
        with pytest.raises(OpusAuthError):
            await revoked.get_job_status(job_id)
        assert await good.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
        assert good._session is not revoked._session


def test_each_event_loop_gets_its_own_session(emulator):
    job_id = start_job(fast_hook())

    async def poll_and_keep_session():
        async with OpusAsyncHook(retry_delay=0.01) as hook:
            await hook.get_job_status(job_id)
            return hook._session

    first, second = asyncio.run(poll_and_keep_session()), asyncio.run(poll_and_keep_session())
    assert first is not second
    assert first.closed and second.closed


async def test_async_hook_retries_503_and_a_dropped_connection(emulator):
    job_id = start_job(fast_hook())
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
    async with OpusAsyncHook(retry_delay=0.01, retry_limit=1) as hook:
        with pytest.raises(OpusTransportError) as info:
            await hook.get_job_status("x")
    assert info.value.request_sent is False
    assert SERVICE_KEY not in str(info.value)


async def test_async_read_timeout_is_retried_for_gets(emulator):
    job_id = start_job(fast_hook())
    emulator.inject("get_job_status", {"delay": 1.0})
    async with OpusAsyncHook(timeout=0.3, retry_delay=0.01) as hook:
        assert await hook.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert len(emulator.requests("get_job_status")) >= 2
