"""connection_cache.py through real triggers and hooks against the emulator: one connection read for many triggers."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_opus.connection_cache import CONFIG_ENV
from airflow_provider_opus.exceptions import OpusAuthError
from airflow_provider_opus.hooks.opus import OpusAsyncHook
from airflow_provider_opus.triggers.opus import OpusJobTrigger
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import fast_hook, start_job
from tests.unit.test_connection_cache import count_reads

pytestmark = pytest.mark.integration

REVOKED_KEY = "revoked-key-0123456789abcdef"


@pytest.fixture
def reads(monkeypatch):
    return count_reads(monkeypatch)


async def events_of(trigger: OpusJobTrigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


async def test_triggers_starting_together_on_one_loop_read_the_connection_once(emulator, reads):
    emulator.configure(job_duration=0.3)
    # OpusHook blocks: the jobs start in a thread, not on the test loop
    jobs = await asyncio.to_thread(lambda: [start_job(fast_hook()) for _ in range(30)])

    results = await asyncio.gather(*(events_of(OpusJobTrigger(job, poll_interval=0.1)) for job in jobs))

    assert [event["status"] for (event,) in results] == ["success"] * 30
    assert reads == ["opus_default"]
    assert len(emulator.requests("get_job_status")) >= 30


async def test_with_the_cache_off_every_trigger_reads_its_connection(emulator, reads, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, "0")
    # OpusHook blocks: the jobs start in a thread, not on the test loop
    jobs = await asyncio.to_thread(lambda: [start_job(fast_hook()) for _ in range(5)])

    results = await asyncio.gather(*(events_of(OpusJobTrigger(job, poll_interval=0.1)) for job in jobs))

    assert [event["status"] for (event,) in results] == ["success"] * 5
    assert reads == ["opus_default"] * 5


async def test_a_refused_key_is_not_kept_so_the_next_hook_reads_the_rotated_one(emulator, reads, monkeypatch):
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    revoked = {"conn_type": "opus", "host": emulator.url, "password": REVOKED_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(revoked))
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        with pytest.raises(OpusAuthError):
            await hook.get_job_status(job_id)

    # The key is rotated in the connection: the next hook on this loop reads it at once, not a minute later.
    rotated = {"conn_type": "opus", "host": emulator.url, "password": SERVICE_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(rotated))
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        assert await hook.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert reads == ["opus_default"] * 3  # the revoked key, read again past the cache after its 401, the rotated


async def test_an_unchanged_connection_is_kept_across_hooks_that_come_and_go(emulator, reads):
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    for _ in range(3):
        async with OpusAsyncHook(retry_delay=0.01) as hook:
            assert await hook.get_job_status(job_id) in ("IN PROGRESS", "COMPLETED")

    assert reads == ["opus_default"]


async def test_a_rotated_key_reaches_running_and_starting_triggers_at_once(emulator, reads, monkeypatch):
    # Both got OpusAuthError (a final error, no Airflow retry) with the cached old key (#20 item 5).
    emulator.configure(job_duration=0.5)
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    old = {"conn_type": "opus", "host": emulator.url, "password": REVOKED_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(old))
    running = OpusAsyncHook(retry_delay=0.01)
    await running.get_settings()  # a running trigger read the old key; Opus has since revoked it
    new = {"conn_type": "opus", "host": emulator.url, "password": SERVICE_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(new))

    starting = OpusJobTrigger(job_id, poll_interval=0.1)  # 0.1 s later: the cache still holds the old key
    (event,) = await events_of(starting)
    assert event["status"] == "success", event
    assert await running.get_job_status(job_id) == "COMPLETED"
    assert reads == ["opus_default", "opus_default"]  # the first read, then one past the cache


async def test_a_second_refusal_with_the_reread_key_fails(emulator, reads, monkeypatch):
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    revoked = {"conn_type": "opus", "host": emulator.url, "password": REVOKED_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(revoked))
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        with pytest.raises(OpusAuthError):
            await hook.get_job_status(job_id)
    assert len([r for r in emulator.requests("get_job_status") if r["status"] == 401]) == 1


async def test_a_connection_that_hands_out_a_new_bad_key_each_read_is_reread_only_once(emulator, monkeypatch):
    # A secrets backend rotating on every read must not make a loop of 401s: one re-read per call.
    from airflow.sdk import BaseHook, Connection

    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: not on the test loop
    keys = iter(f"bad-key-{number:04d}-0123456789abcdef" for number in range(1000))

    async def new_key_each_time(conn_id: str) -> Connection:
        return Connection(conn_id=conn_id, conn_type="opus", host=emulator.url, password=next(keys))

    monkeypatch.setattr(BaseHook, "aget_connection", new_key_each_time)
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        with pytest.raises(OpusAuthError):
            await hook.get_job_status(job_id)
    assert len([r for r in emulator.requests("get_job_status") if r["status"] == 401]) == 2
