"""The async hooks' checked connection settings, kept for a short time.

Reading a connection is most of a trigger's start (Airflow's ``aget_connection``, then
:meth:`~airflow_provider_opus.connection.OpusConnectionSettings.from_connection`): 1,000 triggers
arriving at once would stall the triggerer's loop reading the same connection 1,000 times
(measured in docs/benchmarks.md). So the checked settings of each connection id (and timeout
override) are kept for ``[opus] connection_cache_seconds`` (environment:
``AIRFLOW__OPUS__CONNECTION_CACHE_SECONDS``; 60 s by default, 0 turns it off), and hooks that ask
while a read is under way wait for that read.

A change to the connection (a rotated key) reaches the triggers that start at most that long after
it, and at once any hook whose call the API refuses with 401 or 403: it reads the connection again
past the cache (:meth:`ConnectionSettingsCache.reread`) and, if the key changed, calls again with the
new one (kept for the triggers that come next). An error is never kept.
The settings are frozen data, kept for the whole process; only a read under way belongs to a loop
(it is a task of that loop). Their repr leaves the service key out, and nothing here logs them.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import conf
from airflow.sdk import BaseHook

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


class ConnectionSettingsCache:
    """
    Checked connection settings by connection id and timeout override, for a short time.

    :param clock: seconds on a monotonic clock (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: settings and when they go stale, on the clock above
        self._kept: dict[_Key, tuple[OpusConnectionSettings, float]] = {}
        #: the reads under way, by loop and key; each removes itself when done
        self._reading: dict[tuple[asyncio.AbstractEventLoop, _Key], asyncio.Task[OpusConnectionSettings]] = {}

    async def get(self, conn_id: str, timeout: float | None = None) -> OpusConnectionSettings:
        """
        Return the checked settings of ``conn_id``: kept ones if fresh, else read (once for all who ask meanwhile).

        :param conn_id: the Airflow connection of type ``opus``.
        :param timeout: the hook's override of the connection's ``timeout``, or None.
        :raises OpusConnectionConfigError: the connection, or ``[opus] connection_cache_seconds``, is unusable.
        """
        key = (conn_id, timeout)
        kept = self._kept.get(key)
        if kept is not None and self._clock() < kept[1]:
            return kept[0]
        loop = asyncio.get_running_loop()
        reading = self._reading.get((loop, key))
        if reading is None:
            seconds = cache_seconds()  # once per read: Airflow's configuration walks the environment
            if seconds == 0:
                return await read_settings(conn_id, timeout)
            reading = self._reading[(loop, key)] = loop.create_task(self._read(key, seconds))
            reading.add_done_callback(lambda task: self._read_done(loop, key, task))
        # Through a shield: a trigger cancelled while it waits cancels its wait, not the read the others wait for.
        return await asyncio.shield(reading)

    async def _read(self, key: _Key, seconds: float) -> OpusConnectionSettings:
        settings = await read_settings(*key)
        self._kept[key] = (settings, self._clock() + seconds)  # an error propagates and is not kept
        return settings

    def _read_done(self, loop: asyncio.AbstractEventLoop, key: _Key, task: asyncio.Task) -> None:
        if self._reading.get((loop, key)) is task:
            del self._reading[(loop, key)]
        if not task.cancelled():
            task.exception()  # retrieved: a waiter cancelled meanwhile must not leave "never retrieved" behind

    async def reread(
        self, conn_id: str, timeout: float | None, refused: OpusConnectionSettings
    ) -> OpusConnectionSettings:
        """
        Return settings read after the API refused the key of ``refused``: never ``refused`` itself.

        Hooks refused together share one read (a rotation refuses every running trigger at once),
        and the settings read are kept for the triggers that start next.

        :param conn_id: the connection id.
        :param timeout: the timeout override the settings were read with.
        :param refused: the settings whose key was refused.
        """
        self.discard(conn_id, timeout, refused)
        return await self.get(conn_id, timeout)

    def discard(self, conn_id: str, timeout: float | None, settings: OpusConnectionSettings) -> None:
        """
        Forget the kept ``settings`` of ``conn_id`` (the API refused their key), if still kept.

        :param conn_id: the connection id.
        :param timeout: the timeout override they were read with.
        :param settings: the settings that failed; newer ones, read meanwhile, stay.
        """
        kept = self._kept.get((conn_id, timeout))
        if kept is not None and kept[0] is settings:
            del self._kept[(conn_id, timeout)]

    def clear(self) -> None:
        """Forget everything kept (reads under way still finish)."""
        self._kept.clear()


#: The one cache of the process.
connection_settings_cache = ConnectionSettingsCache()
