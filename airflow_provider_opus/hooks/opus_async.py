"""
The async hook: the Opus API on ``aiohttp``, for the trigger (import it from :mod:`airflow_provider_opus.hooks.opus`).

The hooks of an event loop share one session (one connection pool) per connection settings, until the loop shuts down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_opus.api import (
    GET_JOB_AUDIT_LOG,
    GET_JOB_RESULTS,
    GET_JOB_STATUS,
    Endpoint,
    checked_job_id,
    job_results_from,
    read_response,
    status_from,
)
from airflow_provider_opus.audit import AuditLog, audit_log_from
from airflow_provider_opus.connection_cache import connection_settings_cache
from airflow_provider_opus.exceptions import OpusAuthError
from airflow_provider_opus.hooks.base import OpusBaseHook
from airflow_provider_opus.transport import exchange, loop_session

if TYPE_CHECKING:
    from collections.abc import Awaitable

    import aiohttp

    from airflow_provider_opus.connection import OpusConnectionSettings


class OpusAsyncHook(OpusBaseHook):
    """
    Read the Opus API on ``aiohttp``, for triggers: nothing here blocks the event loop.

    :param opus_conn_id: the Airflow connection of type ``opus``.
    :param timeout: seconds a whole call may take, answer included; overrides the connection's ``timeout``.
    :param retry_limit: retries of a failed call (same policy as :class:`OpusHook`).
    :param retry_delay: base delay between retries in seconds.
    """

    def __init__(
        self,
        opus_conn_id: str = OpusBaseHook.default_conn_name,
        timeout: float | None = None,
        retry_limit: int = 3,
        retry_delay: float = 1.0,
    ) -> None:
        super().__init__(opus_conn_id, timeout, retry_limit, retry_delay)
        # Set here, not first at the first read: attributes added later cost every hook a dict of its own
        # (a burst of 1,000 triggers then crosses a full collection sooner; docs/benchmarks.md).
        self._settings: OpusConnectionSettings | None = None
        self._proxy: str | None = None  # every call goes to the API's origin: worked out once, not at each poll

    async def __aenter__(self) -> OpusAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release nothing: the session is the loop's, kept warm for later hooks, closed with the loop."""

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The running loop's open session for this hook's connection, once the hook has called."""
        return None if self._settings is None else loop_session(self._settings)

    async def get_settings(self) -> OpusConnectionSettings:
        """Return the checked connection settings, read once per hook through the process's cache."""
        if self._settings is None:
            settings = await connection_settings_cache.get(self.opus_conn_id, self.timeout)
            self._settings, self._proxy = settings, settings.proxy_for(settings.base_url)
        return self._settings

    async def _send_once(self, endpoint: Endpoint, path: str, *, may_reread_key: bool = True) -> Any:
        settings = self._settings or await self.get_settings()
        status, body, retry_after = await exchange(
            settings, endpoint.method, settings.base_url + path, path, self._proxy
        )
        try:
            return read_response(endpoint, path, status, body, retry_after)
        except OpusAuthError:
            # The key may have been rotated: read the connection past the cache. A new key gets one more
            # try, and only one (a secrets backend handing out a new bad key each time must not loop).
            fresh = may_reread_key and await connection_settings_cache.get(self.opus_conn_id, self.timeout, settings)
            if not fresh or fresh.service_key == settings.service_key:
                raise
            self._settings, self._proxy = fresh, fresh.proxy_for(fresh.base_url)
            return await self._send_once(endpoint, path, may_reread_key=False)

    def _call(self, endpoint: Endpoint, path: str) -> Awaitable[Any]:
        # Not a coroutine of its own: one object less per poll for the garbage collector to track.
        return self.retry_policy.acall(endpoint, f"{endpoint.method} {path}", lambda: self._send_once(endpoint, path))

    async def get_job_status(self, job_execution_id: str) -> str:
        """
        Return the job's status as Opus sent it.

        :param job_execution_id: the job.
        """
        path = GET_JOB_STATUS.path(**checked_job_id(job_execution_id))
        return status_from(await self._call(GET_JOB_STATUS, path), path)

    async def get_job_results(self, job_execution_id: str) -> dict:
        """
        Return the job's results object.

        :param job_execution_id: the job.
        """
        path = GET_JOB_RESULTS.path(**checked_job_id(job_execution_id))
        return job_results_from(await self._call(GET_JOB_RESULTS, path), path)

    async def get_job_audit_log(self, job_execution_id: str) -> AuditLog:
        """
        Return the job's audit log as Opus sent it: the ``auditTrail`` list, or today's node-level object.

        :param job_execution_id: the job.
        """
        path = GET_JOB_AUDIT_LOG.path(**checked_job_id(job_execution_id))
        return audit_log_from(await self._call(GET_JOB_AUDIT_LOG, path), path)
