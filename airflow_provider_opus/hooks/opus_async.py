"""The async hook: the Opus API on ``aiohttp``, for the trigger.

It is the twin of :class:`~airflow_provider_opus.hooks.opus.OpusHook` for the calls a trigger
makes (``_send_once``, ``_call`` and the job reads exist in both because one blocks and one
awaits); what they decide lives in :mod:`airflow_provider_opus.api`,
:mod:`airflow_provider_opus.retry` and :mod:`airflow_provider_opus.transport`, used by both.
Import it from :mod:`airflow_provider_opus.hooks.opus`.
"""

from __future__ import annotations

import asyncio
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
from airflow_provider_opus.async_sessions import client_session, open_session
from airflow_provider_opus.audit import AuditLog, audit_log_from
from airflow_provider_opus.connection_cache import connection_settings_cache
from airflow_provider_opus.exceptions import OpusAuthError
from airflow_provider_opus.hooks.base import OpusBaseHook
from airflow_provider_opus.transport import READ_CHUNK_BYTES, ResponseBody, transport_error

if TYPE_CHECKING:
    from collections.abc import Awaitable

    import aiohttp

    from airflow_provider_opus.connection import OpusConnectionSettings


class OpusAsyncHook(OpusBaseHook):
    """
    Read the Opus API on ``aiohttp``, for triggers: nothing here blocks the event loop.

    Hooks on the same event loop and connection share one ``aiohttp`` session
    (:mod:`~airflow_provider_opus.async_sessions`), so a triggerer polling thousands of jobs keeps
    one pool of at most 100 keep-alive connections. A hook uses the running loop's session at each
    call (so also under a new loop); the session stays open for the loop's next hooks and is closed
    when the loop shuts down.

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
        self._settings: OpusConnectionSettings | None = None
        #: The proxy of every call: all go to the API's origin, so it is worked out once, not at each poll.
        self._proxy: str | None = None

    async def __aenter__(self) -> OpusAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Nothing to release: the session is the loop's, kept warm for later hooks, closed with the loop."""

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The running loop's session for this hook's connection, once the hook has called."""
        return None if self._settings is None else open_session(self._settings)

    async def get_settings(self) -> OpusConnectionSettings:
        """
        Return the checked connection settings, read without blocking the event loop.

        Read once per hook, through the running loop's connection-settings cache
        (``airflow_provider_opus.connection_cache``): hooks that start within
        ``[opus] connection_cache_seconds`` of each other share one read.
        """
        if self._settings is None:
            settings = await connection_settings_cache.get(self.opus_conn_id, self.timeout)
            self._proxy = settings.proxy_for(settings.base_url)
            self._settings = settings
        return self._settings

    async def _send_once(self, endpoint: Endpoint, path: str, *, may_reread_key: bool = True) -> Any:
        import aiohttp

        settings = self._settings or await self.get_settings()
        # Asked for at each call: the hook may be used again under another event loop.
        session = open_session(settings) or await client_session(settings)
        method, url = endpoint.method, settings.base_url + path
        try:
            # The session's total timeout is the deadline of the whole call, body included; its
            # connector checks certificates as the blocking hook does (transport.aiohttp_ssl).
            async with session.request(method, url, allow_redirects=False, proxy=self._proxy) as response:
                body = ResponseBody(method, path, response.status, response.content_length)
                if body.wants_more:
                    async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
                        if not body.add(chunk):
                            break
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise transport_error(method, path, exc, settings.timeout) from None
        try:
            return read_response(endpoint, path, status, body.content, retry_after)
        except OpusAuthError:
            # The key may have been rotated: read the connection past the cache; a new key gets one more
            # try, and only one (a secrets backend handing out a new bad key each time must not loop).
            if not may_reread_key:
                raise
            fresh = await connection_settings_cache.reread(self.opus_conn_id, self.timeout, settings)
            if fresh.service_key == settings.service_key:
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
