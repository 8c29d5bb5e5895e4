"""The async hooks' checked connection settings, kept per event loop for a short time.

A triggerer runs every trigger on one event loop, and each trigger's hook reads its Airflow
connection when it starts. That read is most of a trigger's start: Airflow's ``aget_connection``
asks the triggerer's supervisor (or the secrets backends), then
:meth:`~airflow_provider_opus.connection.OpusConnectionSettings.from_connection` checks every
field. 5,000 deferred tasks would read the same connection 5,000 times, and 1,000 arriving at once
would stall the loop while they do. :class:`ConnectionSettingsCache` keeps the checked settings of
each connection id (and timeout override) per event loop for ``[opus] connection_cache_seconds``
(environment: ``AIRFLOW__OPUS__CONNECTION_CACHE_SECONDS``; 60 s by default, 0 turns it off): one
read per connection in that time, however many triggers start. Triggers that start together
while nothing is kept share one read.

So a rotated key, or any other change to the connection, reaches the triggers that start at
most that long after it; a trigger already running keeps the settings it started with, as it
always did. A call the API refuses with 401 or 403 drops the kept settings at once (the key may
have been rotated), so the next trigger reads the connection again. An error reading or
checking a connection is never kept: the next trigger reads it again. The settings hold the
service key, but their repr leaves it out, and nothing here logs them.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

from airflow_provider_opus.compat import conf
from airflow_provider_opus.connection import OpusConnectionSettings
from airflow_provider_opus.exceptions import OpusConnectionConfigError, show_value
from airflow_provider_opus.get_provider_info import CONNECTION_CACHE_SECONDS

if TYPE_CHECKING:
    from collections.abc import Callable

#: The Airflow configuration option: ``[opus] connection_cache_seconds``.
CONFIG_SECTION, CONFIG_KEY = "opus", "connection_cache_seconds"
#: The environment variable Airflow reads the option from.
CONFIG_ENV = f"AIRFLOW__{CONFIG_SECTION.upper()}__{CONFIG_KEY.upper()}"
#: Seconds the settings are kept when the option is not set (declared with the option in the provider info).
DEFAULT_SECONDS = CONNECTION_CACHE_SECONDS

_Key = tuple[str, "float | None"]


def cache_seconds() -> float:
    """
    Return ``[opus] connection_cache_seconds``: how long checked settings are kept (0: not at all).

    :raises OpusConnectionConfigError: the option is not a finite number of seconds, 0 or more.
    """
    value = conf.get(CONFIG_SECTION, CONFIG_KEY, fallback=None)
    if value is None or not str(value).strip():
        return DEFAULT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise OpusConnectionConfigError(
            f"[{CONFIG_SECTION}] {CONFIG_KEY} (environment: {CONFIG_ENV}) must be a number of seconds, 0 or more "
            f"(0 reads the connection for every trigger); got {show_value(value)}."
        )
    return seconds


async def read_settings(conn_id: str, timeout: float | None) -> OpusConnectionSettings:
    """
    Read the Airflow connection and check it, without blocking the event loop; nothing kept.

    :param conn_id: the Airflow connection of type ``opus``.
    :param timeout: the hook's override of the connection's ``timeout``, or None.
    """
    conn = await BaseHook.aget_connection(conn_id)
    return OpusConnectionSettings.from_connection(conn, timeout)


@dataclass(frozen=True)
class _Kept:
    settings: OpusConnectionSettings
    #: when the settings go stale, on the cache's clock
    until: float


class _LoopEntries:
    """What one event loop keeps: settings by key, and the reads under way (each a task of that loop)."""

    __slots__ = ("kept", "reading")

    def __init__(self) -> None:
        self.kept: dict[_Key, _Kept] = {}
        self.reading: dict[_Key, asyncio.Task[OpusConnectionSettings]] = {}


class ConnectionSettingsCache:
    """
    Checked connection settings per event loop, connection id and timeout override, for a short time.

    Loops are held weakly: a loop that is gone takes its entries with it. Nothing kept refers to a
    loop (a read under way does, and is dropped when it ends), so keeping settings never keeps a
    loop alive.

    :param clock: seconds on a monotonic clock (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopEntries] = weakref.WeakKeyDictionary()
        self._clock = clock

    async def get(self, conn_id: str, timeout: float | None = None) -> OpusConnectionSettings:
        """
        Return the checked settings of ``conn_id``: kept ones if fresh, else read (once for all who ask meanwhile).

        :param conn_id: the Airflow connection of type ``opus``.
        :param timeout: the hook's override of the connection's ``timeout``, or None.
        :raises OpusConnectionConfigError: the connection, or ``[opus] connection_cache_seconds``, is unusable.
        """
        loop = asyncio.get_running_loop()
        entries = self._by_loop.get(loop)
        key = (conn_id, timeout)
        if entries is not None:
            kept = entries.kept.get(key)
            if kept is not None and self._clock() < kept.until:
                return kept.settings
        reading = entries.reading.get(key) if entries is not None else None
        if reading is None:
            # Once per read, not per caller: Airflow's configuration walks the environment each time.
            seconds = cache_seconds()
            if seconds == 0:
                return await read_settings(conn_id, timeout)
            if entries is None:
                entries = self._by_loop.setdefault(loop, _LoopEntries())
            # A task of its own, awaited through a shield: a trigger cancelled while it waits
            # cancels only its own wait, never the read the others wait for.
            reading = loop.create_task(self._read(entries, key, seconds))
            entries.reading[key] = reading
            reading.add_done_callback(functools.partial(_read_done, entries, key))
        return await asyncio.shield(reading)

    async def _read(self, entries: _LoopEntries, key: _Key, seconds: float) -> OpusConnectionSettings:
        settings = await read_settings(*key)
        # Only settings that passed every check are kept; an error propagates and is not kept.
        entries.kept[key] = _Kept(settings, self._clock() + seconds)
        return settings

    def discard(self, conn_id: str, timeout: float | None, settings: OpusConnectionSettings) -> None:
        """
        Forget the running loop's kept ``settings`` of ``conn_id`` (the API refused their key), if still kept.

        :param conn_id: the connection id.
        :param timeout: the timeout override they were read with.
        :param settings: the settings that failed; newer ones, read meanwhile, stay.
        """
        try:
            entries = self._by_loop.get(asyncio.get_running_loop())
        except RuntimeError:
            return
        kept = entries.kept.get((conn_id, timeout)) if entries is not None else None
        if entries is not None and kept is not None and kept.settings is settings:
            del entries.kept[(conn_id, timeout)]

    def clear(self) -> None:
        """Forget everything kept, on every loop (reads under way still finish)."""
        for entries in list(self._by_loop.values()):
            entries.kept.clear()


def _read_done(entries: _LoopEntries, key: _Key, task: asyncio.Task[OpusConnectionSettings]) -> None:
    if entries.reading.get(key) is task:
        del entries.reading[key]
    if not task.cancelled():
        # Marks the error retrieved: every trigger that waited for this read has it already, and
        # one whose wait was cancelled must not leave "exception was never retrieved" behind.
        task.exception()


#: The one cache of the process.
connection_settings_cache = ConnectionSettingsCache()
