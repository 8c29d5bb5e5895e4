"""hooks/opus_async.py: OpusAsyncHook against the emulator over real loopback HTTP: reads, shared sessions, retries."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import weakref

import pytest

from airflow_provider_opus.connection_cache import connection_settings_cache
from airflow_provider_opus.exceptions import (
    OpusAuthError,
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
    job_id = start_job(fast_hook())
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
    assert hook.session is None


async def test_async_hooks_on_one_loop_share_one_session_and_its_connection(emulator):
    job_id = start_job(fast_hook())
    hooks = [OpusAsyncHook(retry_delay=0.01) for _ in range(20)]
    for hook in hooks:
        assert await hook.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert len({id(hook.session) for hook in hooks}) == 1
    session = hooks[0].session
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
        assert good.session is not revoked.session


def test_each_event_loop_gets_its_own_session(emulator):
    job_id = start_job(fast_hook())

    async def poll_and_keep_session():
        async with OpusAsyncHook(retry_delay=0.01) as hook:
            await hook.get_job_status(job_id)
            return hook.session

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
    connection_settings_cache.clear()  # this loop keeps the settings read above for a minute (connection_cache.py)
    async with OpusAsyncHook(retry_delay=0.01, retry_limit=1) as hook:
        with pytest.raises(OpusTransportError) as info:
            await hook.get_job_status("x")
    assert info.value.request_sent is False
    assert SERVICE_KEY not in str(info.value)


async def test_async_read_timeout_is_retried_for_gets_on_a_new_connection(emulator):
    job_id = start_job(fast_hook())
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
    job_id = start_job(fast_hook())
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
    assert elapsed < 6  # 3x the timeout, generous


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


# -- sessions and event loops: a finished loop is let go, a hook works under a new one ----------------


def test_finished_event_loops_are_freed_even_with_unclosed_hooks(emulator):
    job_id = start_job(fast_hook())
    hooks, loops = [], []

    async def poll_and_leave_open(hook: OpusAsyncHook) -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await hook.get_job_status(job_id)

    for _ in range(30):
        hooks.append(OpusAsyncHook(retry_delay=0.01))  # kept, never closed
        asyncio.run(poll_and_leave_open(hooks[-1]))
    gc.collect()
    # Airflow's SDK keeps the last loop it ran a connection lookup on; none of the others may live on.
    assert sum(loop() is not None for loop in loops) <= 1


def test_a_hook_can_be_used_again_under_a_new_event_loop(emulator):
    job_id = start_job(fast_hook())
    hook = OpusAsyncHook(retry_delay=0.01)

    async def poll() -> tuple[str, object]:
        return await hook.get_job_status(job_id), hook.session

    (first_status, first_session), (second_status, second_session) = asyncio.run(poll()), asyncio.run(poll())
    assert {first_status, second_status} <= {"IN PROGRESS", "COMPLETED"}
    assert first_session is not second_session
    assert first_session.closed and second_session.closed  # each closed when its loop shut down


UNCLOSED_HOOK_SCRIPT = """
import asyncio, sys
from airflow_provider_opus.hooks.opus import OpusAsyncHook

async def poll(hook):
    await hook.get_job_status(sys.argv[1])

hooks = [OpusAsyncHook(retry_limit=0), OpusAsyncHook(retry_limit=0)]
asyncio.run(poll(hooks[0]))  # its loop shuts down: the session is closed then
loop = asyncio.new_event_loop()
loop.run_until_complete(poll(hooks[1]))  # a loop never closed: the session is closed at exit
print("polled")
"""


def test_a_hook_left_unclosed_leaves_no_unclosed_session_behind(emulator):
    job_id = start_job(fast_hook())
    env = {**os.environ, "AIRFLOW_CONN_OPUS_DEFAULT": emulator.connection_json(), "PYTHONWARNINGS": "always"}
    result = subprocess.run(
        [sys.executable, "-c", UNCLOSED_HOOK_SCRIPT, job_id], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "polled" in result.stdout
    assert "Unclosed" not in result.stdout + result.stderr
