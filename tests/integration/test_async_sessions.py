"""transport.py and hooks/opus_async.py: the aiohttp sessions the async hooks share, per event loop and
connection settings, against the emulator over real loopback HTTP."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import weakref

import pytest

from airflow_provider_opus.exceptions import OpusAuthError
from airflow_provider_opus.hooks.opus import OpusAsyncHook
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import fast_hook, start_job

pytestmark = pytest.mark.integration


# -- one session per event loop and connection settings, closed with its loop ---------------------------


async def test_async_hooks_on_one_loop_share_one_session_and_its_connection(emulator):
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    hooks = [OpusAsyncHook(retry_delay=0.01) for _ in range(20)]
    for hook in hooks:
        assert await hook.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert len({id(hook.session) for hook in hooks}) == 1
    session = hooks[0].session
    for hook in hooks:
        await hook.close()
    # Kept open when every hook let go: the next burst of triggers finds its connections warm.
    assert not session.closed
    async with OpusAsyncHook(retry_delay=0.01) as later:
        assert await later.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
        assert later.session is session
    polls = emulator.requests("get_job_status")[-21:]
    assert len({poll["client_port"] for poll in polls}) == 1  # 21 polls, one kept-alive connection


async def test_async_hooks_with_different_keys_never_share_a_session(emulator, monkeypatch):
    other = {"conn_type": "opus", "host": emulator.url, "password": SERVICE_KEY + "-revoked"}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_OTHER", json.dumps(other))
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
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
asyncio.run(poll(hooks[1]))  # the same hook type again, on a second loop, still never closed
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
