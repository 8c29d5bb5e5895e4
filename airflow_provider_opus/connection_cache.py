"""
The async hooks' checked connection settings, kept per process for ``[opus] connection_cache_seconds``.

Only a read under way belongs to an event loop (the settings are frozen data); an error is never kept.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from contextlib import suppress
from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import conf
from airflow.sdk import BaseHook

from airflow_provider_opus.connection import OpusConnectionSettings
from airflow_provider_opus.exceptions import OpusConnectionConfigError, show_value
from airflow_provider_opus.get_provider_info import CONNECTION_CACHE_SECONDS

if TYPE_CHECKING:
    from collections.abc import Callable

#: The environment variable Airflow reads ``[opus] connection_cache_seconds`` from.
CONFIG_ENV = "AIRFLOW__OPUS__CONNECTION_CACHE_SECONDS"

_Key = tuple[str, "float | None"]


def cache_seconds() -> float:
    """
    Return ``[opus] connection_cache_seconds``: how long checked settings are kept (0: not at all).

    :raises OpusConnectionConfigError: the option is not a finite number of seconds, 0 or more.
    """
    value = conf.get("opus", "connection_cache_seconds", fallback=None) or ""
    with suppress(ValueError):
        seconds = float(value) if value.strip() else CONNECTION_CACHE_SECONDS
        if 0 <= seconds < math.inf:
            return seconds
    raise OpusConnectionConfigError(
        f"[opus] connection_cache_seconds (environment: {CONFIG_ENV}) must be a number of seconds, 0 or more "
        f"(0 reads the connection for every trigger); got {show_value(value)}."
    )


class ConnectionSettingsCache:
    """
    Keep checked connection settings by connection id and timeout override, for a short time.

    :param clock: seconds on a monotonic clock (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._kept: dict[_Key, tuple[OpusConnectionSettings, float]] = {}  # settings, and when they go stale
        self._reading: dict[tuple[asyncio.AbstractEventLoop, _Key], asyncio.Task[OpusConnectionSettings]] = {}

    async def get(
        self, conn_id: str, timeout: float | None = None, refused: OpusConnectionSettings | None = None
    ) -> OpusConnectionSettings:
        """
        Return the checked settings of ``conn_id``: kept ones if fresh, else read once for all who ask meanwhile.

        :param conn_id: the Airflow connection of type ``opus``.
        :param timeout: the hook's override of the connection's ``timeout``, or None.
        :param refused: settings whose key the API refused: if they are kept, they are dropped and read again.
        :raises OpusConnectionConfigError: the connection, or ``[opus] connection_cache_seconds``, is unusable.
        """
        key = (conn_id, timeout)
        kept = self._kept.get(key)
        if kept is not None and kept[0] is refused:
            del self._kept[key]
        elif kept is not None and self._clock() < kept[1]:
            return kept[0]
        loop = asyncio.get_running_loop()
        reading = self._reading.get((loop, key))
        if reading is None:
            seconds = cache_seconds()  # once per read: Airflow's configuration walks the environment
            if seconds == 0:
                return await self._read(key, seconds)
            reading = self._reading[(loop, key)] = loop.create_task(self._read(key, seconds))
            # A partial, not a lambda: a closure gives every call of get, so every waiting trigger, three cells.
            reading.add_done_callback(functools.partial(self._read_done, loop, key))
        # Through a shield: a waiter's cancellation cancels its wait, not the read the others wait for.
        return await asyncio.shield(reading)

    async def _read(self, key: _Key, seconds: float) -> OpusConnectionSettings:
        settings = OpusConnectionSettings.from_connection(await BaseHook.aget_connection(key[0]), key[1])
        if seconds:
            self._kept[key] = (settings, self._clock() + seconds)  # an error propagates and is not kept
        return settings

    def _read_done(self, loop: asyncio.AbstractEventLoop, key: _Key, task: asyncio.Task) -> None:
        del self._reading[(loop, key)]
        if not task.cancelled():
            task.exception()  # retrieved: with every waiter cancelled, no "Task exception was never retrieved"

    def clear(self) -> None:
        """Forget everything kept (reads under way still finish)."""
        self._kept.clear()


#: The one cache of the process.
connection_settings_cache = ConnectionSettingsCache()
