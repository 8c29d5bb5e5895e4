"""triggers/opus.py: OpusJobTrigger against the emulator: real aiohttp over loopback, one event per run."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import re
import time
from types import SimpleNamespace

import pytest

import airflow_provider_opus.triggers.opus as trigger_module
from airflow_provider_opus.connection_cache import connection_settings_cache
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.triggers.opus import OpusJobTrigger
from tests.support.task_context import VALID_INPUTS, FakeClock

pytestmark = pytest.mark.integration


def start_job() -> str:
    hook = OpusHook(retry_delay=0.01)
    from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
    from airflow_provider_opus.payload import build_job_payload

    schema = hook.get_job_payload_schema(DEFAULT_WORKFLOW_ID)
    job_id = hook.initiate_job(DEFAULT_WORKFLOW_ID, "t", "d")
    hook.execute_job(job_id, build_job_payload(schema, VALID_INPUTS, workflow_id=DEFAULT_WORKFLOW_ID))
    return job_id


async def events_of(trigger: OpusJobTrigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def trigger_for(job_id: str, **kwargs) -> OpusJobTrigger:
    return OpusJobTrigger(job_id, poll_interval=kwargs.pop("poll_interval", 0.05), retry_delay=0.01, **kwargs)


async def test_success_event(emulator):
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    # Hold the job running until the trigger has seen it so (on a loaded machine a 0.3 s job can
    # end before the first poll), then let it complete.
    emulator.set_job_status(job_id, "IN PROGRESS")
    events = asyncio.ensure_future(events_of(trigger_for(job_id)))
    deadline = time.monotonic() + 30
    while not emulator.requests("get_job_status") and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    emulator.set_job_status(job_id, "COMPLETED")
    (event,) = await events
    assert event["status"] == "success"
    assert event["opus_status"] == "COMPLETED"
    assert event["job_execution_id"] == job_id
    assert len(emulator.requests("get_job_status")) >= 2  # it polled while running, then polled again


async def test_failed_event(emulator):
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    emulator.set_job_status(job_id, "FAILED")
    (event,) = await events_of(trigger_for(job_id))
    assert (event["status"], event["opus_status"]) == ("failed", "FAILED")


async def test_unknown_status_fails_closed(emulator):
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    emulator.set_job_status(job_id, "CANCELLED")
    (event,) = await events_of(trigger_for(job_id))
    assert (event["status"], event["opus_status"]) == ("failed", "CANCELLED")


async def test_deadline_makes_a_final_check_and_times_out(emulator):
    emulator.configure(job_duration=30)
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    end_time = time.time() + 0.3
    (event,) = await events_of(trigger_for(job_id, poll_interval=10, end_time=end_time))
    assert event["status"] == "timeout"
    assert "keeps running" in event["message"]
    (poll,) = emulator.requests("get_job_status")  # one poll, at the deadline (not after 10 s)
    assert end_time <= poll["time"] < end_time + 2


async def test_job_finishing_at_the_deadline_is_success(emulator):
    emulator.configure(job_duration=0.2)
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    (event,) = await events_of(trigger_for(job_id, poll_interval=10, end_time=time.time() + 0.4))
    assert event["status"] == "success"


async def test_past_deadline_still_checks_once(emulator):
    emulator.configure(job_duration=0)
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    (event,) = await events_of(trigger_for(job_id, end_time=time.time() - 5))
    assert event["status"] == "success"


async def test_503_during_polling_is_retried(emulator):
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    emulator.inject("get_job_status", {"status": 503}, {"status": 502})
    (event,) = await events_of(trigger_for(job_id))
    assert event["status"] == "success"


async def test_persistent_error_yields_one_error_event(emulator):
    emulator.inject("get_job_status", {"status": 500, "times": 10})
    (event,) = await events_of(trigger_for("some-job", retry_limit=1))
    assert event["status"] == "error"
    assert "HTTP 500" in event["message"]


async def test_broken_connection_yields_an_error_event_at_once(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "host": emulator.url}))
    # Not one poll_interval (an hour) later: the trigger reads its connection before it first waits.
    (event,) = await asyncio.wait_for(events_of(trigger_for("some-job", poll_interval=3600)), timeout=30)
    assert event["status"] == "error" and "has no service key" in event["message"]
    assert emulator.requests("get_job_status") == []


async def test_unknown_job_yields_error_event(emulator):
    (event,) = await events_of(trigger_for("no-such-job"))
    assert event["status"] == "error" and "HTTP 404" in event["message"]


def test_serialize_round_trips_every_argument():
    trigger = OpusJobTrigger(
        "j1",
        "my_conn",
        poll_interval=12.5,
        end_time=1234.5,
        retry_limit=7,
        retry_delay=0.5,
        max_poll_interval=600,
        waiting_since=1000.0,
        running_statuses=["Awaiting sign-off"],
        failed_statuses=["rolled_back"],
    )
    classpath, kwargs = trigger.serialize()
    module_name, _, class_name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module_name), class_name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "job_execution_id": "j1",
        "opus_conn_id": "my_conn",
        "poll_interval": 12.5,
        "end_time": 1234.5,
        "retry_limit": 7,
        "retry_delay": 0.5,
        "max_poll_interval": 600,
        "waiting_since": 1000.0,
        "running_statuses": ["AWAITING SIGN OFF"],
        "failed_statuses": ["ROLLED BACK"],
    }
    assert set(inspect.signature(OpusJobTrigger.__init__).parameters) - {"self"} == set(kwargs)


async def test_first_poll_waits_one_interval(emulator):
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    started = time.time()
    (event,) = await events_of(trigger_for(job_id, poll_interval=0.4))
    assert event["status"] == "success"
    first_poll = emulator.requests("get_job_status")[0]
    assert first_poll["time"] >= started + 0.4  # the task checked just before deferring


def install_clock(monkeypatch, clock: FakeClock) -> None:
    monkeypatch.setattr(trigger_module, "time", SimpleNamespace(time=clock.time))
    monkeypatch.setattr(trigger_module, "asyncio", SimpleNamespace(sleep=clock.asleep))


async def test_growing_interval_polls_a_day_long_job_a_few_dozen_times(emulator, monkeypatch):
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    emulator.set_job_status(job_id, "IN PROGRESS")

    def finish_after_a_day(clock):
        if clock.now >= 1_000_000 + 86_400:
            emulator.set_job_status(job_id, "COMPLETED")

    clock = FakeClock(1_000_000, finish_after_a_day)
    install_clock(monkeypatch, clock)
    (event,) = await events_of(trigger_for(job_id, poll_interval=30, max_poll_interval=3_600))
    assert event["status"] == "success"
    assert clock.waits[:10] == [30] * 10  # a short job is seen as quickly as with the fixed interval
    assert clock.waits == sorted(clock.waits) and max(clock.waits) == 3_600
    assert len(emulator.requests("get_job_status")) == len(clock.waits) < 100  # fixed 30 s: 2,880


async def test_restarted_trigger_keeps_the_grown_interval(emulator, monkeypatch):
    job_id = await asyncio.to_thread(start_job)  # OpusHook blocks: not on the test loop
    emulator.set_job_status(job_id, "IN PROGRESS")
    clock = FakeClock(1_000_000)
    install_clock(monkeypatch, clock)
    _, kwargs = trigger_for(job_id, poll_interval=30, max_poll_interval=3_600).serialize()
    assert kwargs["waiting_since"] == 1_000_000
    clock.now += 20_000  # the triggerer restarts hours later and rebuilds the trigger from its kwargs
    clock.on_sleep = lambda clock: emulator.set_job_status(job_id, "COMPLETED")
    (event,) = await events_of(OpusJobTrigger(**kwargs))
    assert event["status"] == "success"
    assert clock.waits == [2_000]


async def test_on_kill_says_the_job_keeps_running(capsys):
    # Airflow 3.3+ calls on_kill when a user marks or clears the deferred task; Opus cannot cancel the job.
    await OpusJobTrigger("job-7", poll_interval=60).on_kill()
    out = capsys.readouterr()
    assert "Opus has no cancel call: job job-7 keeps running in Opus" in out.out + out.err


async def test_error_event_carries_the_error_kind(emulator, monkeypatch):
    (event,) = await events_of(trigger_for("no-such-job"))
    assert (event["error_type"], event["http_status"], event["path"]) == (
        "OpusNotFoundError",
        404,
        "/job/no-such-job/status",
    )
    revoked = {"conn_type": "opus", "host": emulator.url, "password": "revoked-key-0123456789"}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(revoked))
    connection_settings_cache.clear()  # this loop keeps the settings read above for a minute (connection_cache.py)
    (event,) = await events_of(trigger_for("some-job"))
    assert (event["status"], event["error_type"], event["http_status"]) == ("error", "OpusAuthError", 401)
    json.dumps(event)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"end_time": float("nan")}, "end_time must be a Unix time in seconds or None, got float nan"),
        ({"end_time": float("inf")}, "end_time must be a Unix time in seconds or None, got float inf"),
        ({"end_time": "soon"}, "end_time must be a Unix time in seconds or None, got 'soon'"),
        ({"retry_limit": None}, "retry_limit must be a whole number, 0 or more, got NoneType None"),
        ({"retry_delay": float("nan")}, "retry_delay must be a number of seconds, 0 or more, got float nan"),
    ],
)
def test_numbers_that_cannot_work_are_refused_when_the_trigger_is_made(kwargs, message):
    # end_time=nan never ended; retry_limit=None raised a bare TypeError in the triggerer (#20 item 17).
    from airflow_provider_opus.exceptions import OpusInvalidArgumentError

    with pytest.raises(OpusInvalidArgumentError, match=f"^{re.escape(message)}$"):
        OpusJobTrigger("job-1", **kwargs)
