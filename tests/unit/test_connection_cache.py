"""connection_cache.py: checked connection settings kept per event loop, read from a real Airflow connection."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import BaseHook

from airflow_provider_opus.connection_cache import (
    CONFIG_ENV,
    ConnectionSettingsCache,
    cache_seconds,
    connection_settings_cache,
)
from airflow_provider_opus.exceptions import OpusConnectionConfigError
from airflow_provider_opus.get_provider_info import CONNECTION_CACHE_SECONDS as DEFAULT_SECONDS
from airflow_provider_opus.hooks.opus import OpusAsyncHook
from tests.unit.helpers import BASE, KEY

pytestmark = pytest.mark.usefixtures("opus_connection")

ROTATED_KEY = "opus-rotated-key-0123456789abcdef"


class Clock:
    """A monotonic clock the test moves by hand: no test here waits for real time to pass."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count Airflow's ``aget_connection`` calls by connection id; each still reads the real connection."""
    calls: list[str] = []
    real = BaseHook.aget_connection

    async def counting(conn_id: str):
        calls.append(conn_id)
        return await real(conn_id)

    monkeypatch.setattr(BaseHook, "aget_connection", counting)
    return calls


@pytest.fixture
def reads(monkeypatch):
    return count_reads(monkeypatch)


def set_connection(monkeypatch, key: str = KEY, **fields) -> None:
    conn = {"conn_type": "opus", "host": BASE, "password": key, **fields}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))


async def test_settings_are_read_once_and_then_kept(reads):
    cache = ConnectionSettingsCache(Clock())

    first = await cache.get("opus_default")
    second = await cache.get("opus_default")

    assert second is first
    assert first.base_url == BASE and first.service_key == KEY
    assert reads == ["opus_default"]


async def test_kept_settings_go_stale_after_the_configured_time_and_a_rotated_key_is_then_read(monkeypatch, reads):
    monkeypatch.setenv(CONFIG_ENV, "5")
    clock = Clock()
    cache = ConnectionSettingsCache(clock)
    first = await cache.get("opus_default")
    set_connection(monkeypatch, ROTATED_KEY)

    clock.now += 4.9
    assert (await cache.get("opus_default")).service_key == KEY  # still within 5 s: the kept settings
    clock.now += 0.2
    fresh = await cache.get("opus_default")

    assert fresh is not first and fresh.service_key == ROTATED_KEY
    assert reads == ["opus_default", "opus_default"]


async def test_the_default_is_sixty_seconds(monkeypatch, reads):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    clock = Clock()
    cache = ConnectionSettingsCache(clock)
    await cache.get("opus_default")

    clock.now += DEFAULT_SECONDS - 0.1
    await cache.get("opus_default")
    assert len(reads) == 1
    clock.now += 0.2
    await cache.get("opus_default")
    assert len(reads) == 2
    assert DEFAULT_SECONDS == 60.0


async def test_each_connection_id_and_timeout_override_is_kept_apart(monkeypatch, reads):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_OTHER", json.dumps({"conn_type": "opus", "host": BASE, "password": KEY}))
    cache = ConnectionSettingsCache(Clock())

    default, other = await cache.get("opus_default"), await cache.get("opus_other")
    short, short_again = await cache.get("opus_default", 5.0), await cache.get("opus_default", 5.0)

    assert (default.conn_id, other.conn_id) == ("opus_default", "opus_other")
    assert short.timeout == 5.0 and default.timeout != 5.0 and short_again is short
    assert reads == ["opus_default", "opus_other", "opus_default"]


async def test_triggers_starting_together_share_one_read(reads):
    cache = ConnectionSettingsCache(Clock())

    settings = await asyncio.gather(*(cache.get("opus_default") for _ in range(500)))

    assert reads == ["opus_default"]
    assert all(each is settings[0] for each in settings)


async def test_a_waiter_cancelled_during_the_shared_read_does_not_cancel_it_for_the_others(reads):
    cache = ConnectionSettingsCache(Clock())
    first = asyncio.ensure_future(cache.get("opus_default"))
    second = asyncio.ensure_future(cache.get("opus_default"))
    await asyncio.sleep(0)  # both wait for the one read now

    first.cancel()
    settings = await second

    assert first.cancelled()
    assert settings.service_key == KEY
    assert reads == ["opus_default"]
    assert await cache.get("opus_default") is settings


def test_a_failed_read_whose_waiters_were_cancelled_leaves_no_unretrieved_error(monkeypatch):
    async def unreadable(conn_id: str):
        await asyncio.sleep(0.01)
        raise RuntimeError("the secrets backend is down")

    monkeypatch.setattr(BaseHook, "aget_connection", unreadable)
    reported: list[dict] = []

    async def cancel_the_only_waiter() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        waiter = asyncio.ensure_future(ConnectionSettingsCache(Clock()).get("opus_default"))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.sleep(0.05)  # the read fails meanwhile, with nobody left to await it
        gc.collect()

    asyncio.run(cancel_the_only_waiter())
    assert reported == []  # no "Task exception was never retrieved"


def test_settings_are_kept_across_event_loops_and_a_finished_loop_is_not_kept_alive(reads):
    cache = ConnectionSettingsCache(Clock())
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def read():
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return await cache.get("opus_default"), await cache.get("opus_default")

    (a1, a2), (b1, b2) = asyncio.run(read()), asyncio.run(read())

    assert a2 is a1 and b1 is a1 and b2 is a1  # frozen data: the second loop uses what the first read
    assert reads == ["opus_default"]
    # The last loop that read a connection is held by asgiref, which Airflow's aget_connection goes
    # through, until another loop reads: one more read, kept apart, so that it lets go of the first.
    asyncio.run(ConnectionSettingsCache(Clock()).get("opus_default"))
    gc.collect()
    assert loops[0]() is None and loops[1]() is None  # only a read under way refers to its loop
    assert cache._reading == {}


@pytest.mark.parametrize(
    ("connection", "error"),
    [
        (None, "isn't defined"),
        ({"conn_type": "opus", "host": BASE}, "service key"),
    ],
    ids=["missing connection", "no service key"],
)
async def test_an_error_reading_or_checking_the_connection_is_never_kept(monkeypatch, reads, connection, error):
    if connection is None:
        monkeypatch.delenv("AIRFLOW_CONN_OPUS_DEFAULT")
    else:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(connection))
    cache = ConnectionSettingsCache(Clock())

    failures = await asyncio.gather(*(cache.get("opus_default") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(failure, Exception) and error in str(failure) for failure in failures), failures
    assert len(reads) == 1  # the three waited for one read, and all got its error

    set_connection(monkeypatch)
    settings = await cache.get("opus_default")

    assert settings.service_key == KEY
    assert len(reads) == 2


async def test_zero_seconds_turns_the_cache_off(monkeypatch, reads):
    monkeypatch.setenv(CONFIG_ENV, "0")
    cache = ConnectionSettingsCache(Clock())

    one, two = await cache.get("opus_default"), await cache.get("opus_default")
    await asyncio.gather(*(cache.get("opus_default") for _ in range(3)))

    assert one is not two and one == two
    assert len(reads) == 5  # every caller reads, as without the cache


@pytest.mark.parametrize(("value", "seconds"), [("5", 5.0), (" 0.5 ", 0.5), ("0", 0.0), ("", DEFAULT_SECONDS)])
def test_the_option_is_read_from_airflow_configuration(monkeypatch, value, seconds):
    monkeypatch.setenv(CONFIG_ENV, value)

    assert cache_seconds() == seconds


@pytest.mark.parametrize("value", ["-1", "sixty", "nan", "inf"])
async def test_a_bad_option_is_a_clear_error_and_nothing_is_read(monkeypatch, reads, value):
    monkeypatch.setenv(CONFIG_ENV, value)

    with pytest.raises(OpusConnectionConfigError) as info:
        await ConnectionSettingsCache(Clock()).get("opus_default")

    message = str(info.value)
    assert "[opus] connection_cache_seconds" in message and CONFIG_ENV in message
    assert "must be a number of seconds, 0 or more" in message and repr(value) in message
    assert isinstance(info.value, AirflowFailException)
    assert reads == []


async def test_refused_settings_are_read_again_but_newer_ones_stay(reads):
    cache = ConnectionSettingsCache(Clock())
    stale = await cache.get("opus_default")

    fresh = await cache.get("opus_default", refused=stale)
    again = await cache.get("opus_default", refused=stale)  # already replaced: the fresh settings stay

    assert fresh is not stale and again is fresh
    assert await cache.get("opus_default") is fresh
    assert len(reads) == 2


async def test_hooks_refused_together_share_one_read(reads):
    cache = ConnectionSettingsCache(Clock())
    stale = await cache.get("opus_default")

    fresh = await asyncio.gather(*(cache.get("opus_default", refused=stale) for _ in range(50)))

    assert all(each is fresh[0] and each is not stale for each in fresh)
    assert len(reads) == 2


async def test_the_service_key_is_in_no_repr_of_what_is_kept():
    cache = ConnectionSettingsCache(Clock())
    await cache.get("opus_default")

    kept = cache._kept
    assert "opus_default" in repr(kept)
    assert KEY not in repr(kept)


async def test_async_hooks_on_one_loop_share_the_kept_settings(reads):
    connection_settings_cache.clear()
    hooks = [OpusAsyncHook(), OpusAsyncHook(), OpusAsyncHook(timeout=7.0)]

    settings = await asyncio.gather(*(hook.get_settings() for hook in hooks))

    assert settings[0] is settings[1] and settings[2].timeout == 7.0
    assert reads == ["opus_default", "opus_default"]
