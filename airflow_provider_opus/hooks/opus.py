"""Hooks for the Opus Job Operator API.

:class:`OpusHook` (``requests``) serves operators and the blocking sensor;
:class:`OpusAsyncHook` (``aiohttp``) serves the trigger. Both read the endpoint table and
response rules of :mod:`airflow_provider_opus.api` and retry by the one policy of
:mod:`airflow_provider_opus.retry`.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_opus import __version__
from airflow_provider_opus.api import (
    DEFAULT_APP_URL,
    DEFAULT_BASE_URL,
    EXECUTE_JOB,
    GET_JOB_AUDIT_LOG,
    GET_JOB_RESULTS,
    GET_JOB_STATUS,
    GET_UPLOAD_URL,
    GET_WORKFLOW,
    INITIATE_JOB,
    SERVICE_KEY_HEADER,
    STORAGE_PUT,
    Endpoint,
    JobStatus,
    error_for_status,
    read_response,
)
from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusConnectionConfigError,
    OpusInvalidArgumentError,
    OpusJobTimeoutError,
    OpusNotFoundError,
    OpusRequestError,
    OpusResponseError,
    OpusTransportError,
)
from airflow_provider_opus.payload import check_access_scope, check_file_extension
from airflow_provider_opus.polling import check_poll_intervals, next_poll_wait
from airflow_provider_opus.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import aiohttp
    import requests
    from airflow.sdk import Connection

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
#: Connecting is quick or not happening: a short connect timeout finds a dead host fast.
MAX_CONNECT_TIMEOUT = 10.0
USER_AGENT = f"airflow-provider-opus/{__version__}"
CONNECTION_TEST_JOB_ID = "airflow-connection-test"

#: Content-Type of each file extension Opus accepts.
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "csv": "text/csv",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "txt": "text/plain",
    "json": "application/json",
    "html": "text/html",
    "xml": "application/xml",
}


@dataclass(frozen=True)
class OpusConnectionSettings:
    """
    What the hooks need from an Airflow connection of type ``opus``, checked once.

    :param conn_id: the connection id (for error messages).
    :param base_url: API base URL without a trailing slash.
    :param service_key: the ``x-service-key``; never printed (excluded from ``repr``).
    :param timeout: seconds to wait for each response.
    :param app_url: base URL of the Opus web app, for links.
    """

    conn_id: str
    base_url: str
    service_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    app_url: str = DEFAULT_APP_URL

    @property
    def connect_timeout(self) -> float:
        """Seconds to wait for a TCP connection."""
        return min(MAX_CONNECT_TIMEOUT, self.timeout)

    @property
    def api_headers(self) -> dict[str, str]:
        """The headers of every API request; they carry the service key, so send them to ``base_url`` only."""
        return {SERVICE_KEY_HEADER: self.service_key, "Accept": "application/json", "User-Agent": USER_AGENT}

    @classmethod
    def from_connection(cls, conn: Connection, timeout: float | None = None) -> OpusConnectionSettings:
        """
        Read and check a connection.

        :param conn: the Airflow connection.
        :param timeout: a timeout that overrides the connection's ``timeout`` field.
        :raises OpusConnectionConfigError: no key, a bad URL or a bad timeout; the message says the fix.
        """
        conn_id = conn.conn_id
        if not conn.password:
            raise OpusConnectionConfigError(
                f"Opus connection {conn_id!r} has no service key: set its password (shown as "
                "'Service key') to an API key from Opus (My Organization > API Keys)."
            )
        extra = conn.extra_dejson or {}
        base_url = _base_url(conn)
        chosen_timeout = timeout if timeout is not None else _extra_field(extra, "timeout")
        try:
            timeout_seconds = float(chosen_timeout) if chosen_timeout not in (None, "") else DEFAULT_TIMEOUT
        except (TypeError, ValueError):
            timeout_seconds = -1.0
        if not timeout_seconds > 0:
            raise OpusConnectionConfigError(
                f"Opus connection {conn_id!r}: timeout must be a positive number of seconds, got {chosen_timeout!r}."
            )
        app_url = str(_extra_field(extra, "app_url") or DEFAULT_APP_URL).rstrip("/")
        return cls(conn_id, base_url, conn.password, timeout_seconds, app_url)


def _extra_field(extra: Mapping[str, Any], name: str) -> Any:
    # Airflow's connection form has stored custom fields both plain and prefixed.
    return extra.get(name, extra.get(f"extra__opus__{name}"))


def _base_url(conn: Connection) -> str:
    host = (conn.host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        scheme = conn.schema if conn.schema in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    host = host.rstrip("/")
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OpusConnectionConfigError(
            f"Opus connection {conn.conn_id!r}: host {conn.host!r} is not an http(s) URL. "
            f"Set it to the API base URL, e.g. {DEFAULT_BASE_URL}, or leave it empty for that default."
        )
    if conn.port and parts.port is None:
        host = f"{host}:{conn.port}"
    return host


def check_local_files(paths: Sequence[str]) -> None:
    """
    Check that every path is a readable, non-empty file of a type Opus accepts, before anything is uploaded.

    :param paths: local file paths.
    :raises OpusInvalidArgumentError: listing every bad path and what to do about it.
    """
    problems = []
    for path in paths:
        if not os.path.exists(path):
            problems.append(f"{path!r} does not exist")
        elif os.path.isdir(path):
            problems.append(f"{path!r} is a directory, not a file")
        elif not os.access(path, os.R_OK):
            problems.append(f"{path!r} is not readable by this process")
        elif os.path.getsize(path) == 0:
            problems.append(f"{path!r} is empty")
        elif problem := check_file_extension(path, None):
            problems.append(f"{path!r}: {problem}")
    if problems:
        raise OpusInvalidArgumentError(f"Cannot upload to Opus: {'; '.join(problems)}")


def _job_id_param(job_execution_id: str) -> dict[str, str]:
    if not isinstance(job_execution_id, str) or not job_execution_id.strip():
        raise OpusInvalidArgumentError(f"job_execution_id must be a non-empty string, got {job_execution_id!r}")
    return {"job_execution_id": job_execution_id}


def _status_from(body: Mapping[str, Any], path: str) -> str:
    status = body["status"]
    if not isinstance(status, str):
        raise OpusResponseError("GET", path, f"status is {type(status).__name__}, expected a string")
    return status


def _audit_trail_from(body: Mapping[str, Any], path: str) -> list[dict]:
    trail = body["auditTrail"]
    if not isinstance(trail, list) or not all(isinstance(entry, dict) for entry in trail):
        raise OpusResponseError("GET", path, "auditTrail is not a list of objects")
    return trail


def _requests_transport_error(endpoint: Endpoint, path: str, exc: requests.RequestException) -> OpusTransportError:
    """Name what happened on the wire, and whether the server can have seen the request."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return OpusTransportError(endpoint.method, path, "connect timeout", request_sent=False)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return OpusTransportError(endpoint.method, path, "read timeout", request_sent=True)
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.exceptions.ConnectionError) and type(reason).__name__ in (
        "NewConnectionError",
        "NameResolutionError",
        "ConnectTimeoutError",
    ):
        return OpusTransportError(endpoint.method, path, "could not connect", request_sent=False)
    return OpusTransportError(endpoint.method, path, f"connection dropped ({type(exc).__name__})", request_sent=True)


def _aiohttp_transport_error(endpoint: Endpoint, path: str, exc: Exception) -> OpusTransportError:
    import aiohttp

    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return OpusTransportError(endpoint.method, path, "could not connect", request_sent=False)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return OpusTransportError(endpoint.method, path, "read timeout", request_sent=True)
    return OpusTransportError(endpoint.method, path, f"connection dropped ({type(exc).__name__})", request_sent=True)


class _SharedClientSessions:
    """
    The ``aiohttp`` sessions of the async hooks: one per event loop and connection settings, counted.

    An ``aiohttp`` session belongs to the loop it was opened on, so sessions are kept per loop,
    weakly, so that a finished loop's sessions go with it.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[OpusConnectionSettings, tuple[aiohttp.ClientSession, int]]
        ] = weakref.WeakKeyDictionary()

    def acquire(self, settings: OpusConnectionSettings) -> aiohttp.ClientSession:
        """The session of the running loop for ``settings``, opened if there is none; counts one more user."""
        import aiohttp

        sessions = self._by_loop.setdefault(asyncio.get_running_loop(), {})
        session, users = sessions.get(settings, (None, 0))
        if session is None or session.closed:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=settings.connect_timeout, sock_read=settings.timeout
            )
            session, users = aiohttp.ClientSession(headers=settings.api_headers, timeout=timeout), 0
        sessions[settings] = (session, users + 1)
        return session

    async def release(self, settings: OpusConnectionSettings, session: aiohttp.ClientSession) -> None:
        """Count one user less of the session :meth:`acquire` gave for ``settings``; close it when none is left."""
        sessions = self._by_loop.get(asyncio.get_running_loop(), {})
        shared, users = sessions.get(settings, (None, 0))
        if shared is session and users > 1:
            sessions[settings] = (session, users - 1)
            return
        if shared is session:
            del sessions[settings]
        await session.close()


_shared_sessions = _SharedClientSessions()


class _OpusBaseHook(BaseHook):
    """What both hooks share: the connection type and the retry settings."""

    conn_name_attr = "opus_conn_id"
    default_conn_name = "opus_default"
    conn_type = "opus"
    hook_name = "Opus"

    def __init__(
        self,
        opus_conn_id: str = default_conn_name,
        timeout: float | None = None,
        retry_limit: int = 3,
        retry_delay: float = 1.0,
    ) -> None:
        super().__init__()
        self.opus_conn_id = opus_conn_id
        self.timeout = timeout
        self.retry_policy = RetryPolicy(retry_limit=retry_limit, retry_delay=retry_delay)


class OpusHook(_OpusBaseHook):
    """
    Calls the Opus Job Operator API, one method per endpoint, with retries.

    :param opus_conn_id: the Airflow connection of type ``opus``: host is the API base URL
        (empty for https://operator.opus.com), password the service key.
    :param timeout: seconds to wait for each response; overrides the connection's ``timeout``.
    :param retry_limit: retries of a failed call where retrying is safe (see :mod:`airflow_provider_opus.retry`).
    :param retry_delay: base delay between retries in seconds (grows exponentially, with jitter).
    """

    @cached_property
    def settings(self) -> OpusConnectionSettings:
        """The checked connection settings (read once per hook)."""
        return OpusConnectionSettings.from_connection(self.get_connection(self.opus_conn_id), self.timeout)

    @cached_property
    def session(self) -> requests.Session:
        """The API session: carries the service key, reused across calls for keep-alive."""
        import requests  # imported on first use: it costs DAG files that only build operators

        session = requests.Session()
        session.headers.update(self.settings.api_headers)
        return session

    @cached_property
    def storage_session(self) -> requests.Session:
        """A bare session for presigned uploads: no service key, no connection headers."""
        import requests

        session = requests.Session()
        session.headers.clear()
        session.headers["User-Agent"] = USER_AGENT
        return session

    # -- transport ---------------------------------------------------------------------------

    def _with_retries(self, endpoint: Endpoint, path: str, attempt: Callable[[], T]) -> T:
        return self.retry_policy.call(endpoint, f"{endpoint.method} {path}", attempt)

    def _send_once(self, endpoint: Endpoint, path: str, json_body: Any = None) -> Any:
        import requests

        settings = self.settings
        try:
            response = self.session.request(
                endpoint.method,
                settings.base_url + path,
                json=json_body,
                timeout=(settings.connect_timeout, settings.timeout),
                # A redirect could carry the service key to another host: never follow one.
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise _requests_transport_error(endpoint, path, exc) from None
        return read_response(
            endpoint, path, response.status_code, response.content, response.headers.get("Retry-After")
        )

    def _call(self, endpoint: Endpoint, path_params: Mapping[str, str] | None = None, json_body: Any = None) -> Any:
        path = endpoint.path(**(path_params or {}))
        return self._with_retries(endpoint, path, lambda: self._send_once(endpoint, path, json_body))

    # -- API ---------------------------------------------------------------------------------

    def get_workflow(self, workflow_id: str) -> dict:
        """
        The whole details object of a workflow (name, blueprint, jobPayloadSchema, ...).

        :param workflow_id: the workflow id, as in ``app.opus.com/app/workflow/{workflow_id}``.
        """
        if not isinstance(workflow_id, str) or not workflow_id.strip():
            raise OpusInvalidArgumentError(f"workflow_id must be a non-empty string, got {workflow_id!r}")
        return self._call(GET_WORKFLOW, {"workflow_id": workflow_id})

    def get_job_payload_schema(self, workflow_id: str) -> dict:
        """
        The workflow's ``jobPayloadSchema``: its inputs keyed by variable name.

        :param workflow_id: the workflow id.
        """
        schema = self.get_workflow(workflow_id)["jobPayloadSchema"]
        if not isinstance(schema, dict):
            raise OpusResponseError(
                "GET", GET_WORKFLOW.path(workflow_id=workflow_id), "jobPayloadSchema is not an object"
            )
        return schema

    def initiate_job(self, workflow_id: str, title: str, description: str) -> str:
        """
        Create a job for a workflow. Retried only where Opus provably did not act.

        :param workflow_id: the workflow id.
        :param title: the job's title.
        :param description: the job's description.
        :return: the jobExecutionId.
        """
        body = {"workflowId": workflow_id, "title": title, "description": description}
        job_execution_id = self._call(INITIATE_JOB, json_body=body)["jobExecutionId"]
        if not isinstance(job_execution_id, (str, int)) or not str(job_execution_id):
            raise OpusResponseError("POST", INITIATE_JOB.path(), "jobExecutionId is empty or not a string")
        return str(job_execution_id)

    def get_upload_url(self, file_extension: str, access_scope: str = "organization") -> dict:
        """
        A presigned upload URL and the fileUrl that will refer to the file.

        :param file_extension: the file's extension, e.g. ``.pdf``.
        :param access_scope: who may read the file: all, user, workspace or organization.
        :return: ``{"presignedUrl": ..., "fileUrl": ...}``.
        """
        check_access_scope(access_scope)
        extension = "." + file_extension.lstrip(".").lower()
        body = {"fileExtension": extension, "accessScope": access_scope}
        return self._call(GET_UPLOAD_URL, json_body=body)

    def upload_file(
        self,
        path: str | os.PathLike[str],
        access_scope: str = "organization",
        content_type: str | None = None,
    ) -> str:
        """
        Upload a local file: get a presigned URL, then stream the file to it.

        The file is streamed from disk, never read whole into memory. The PUT goes through
        a bare session: the service key is sent to Opus only, never to the storage host.

        :param path: the local file.
        :param access_scope: who may read the file: all, user, workspace or organization.
        :param content_type: the Content-Type to send; by default from the extension.
        :return: the fileUrl to use as the value of a ``file`` input.
        """
        local_path = os.fspath(path)
        check_local_files([local_path])
        extension = os.path.splitext(local_path)[1].lstrip(".").lower()
        urls = self.get_upload_url(extension, access_scope)
        presigned_url, file_url = urls["presignedUrl"], urls["fileUrl"]
        headers = {"Content-Type": content_type or CONTENT_TYPES.get(extension, "application/octet-stream")}
        storage_path = urlsplit(presigned_url).path  # no query: it holds the signature

        def put_once() -> None:
            with open(local_path, "rb") as stream:
                self._put_stream(presigned_url, storage_path, stream, headers)

        self._with_retries(STORAGE_PUT, storage_path, put_once)
        self.log.info("Uploaded %s (%d bytes) to %s", local_path, os.path.getsize(local_path), file_url)
        return str(file_url)

    def _put_stream(self, url: str, path: str, stream: BinaryIO, headers: Mapping[str, str]) -> None:
        import requests

        try:
            response = self.storage_session.put(
                url,
                data=stream,
                headers=dict(headers),
                timeout=(self.settings.connect_timeout, self.settings.timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise _requests_transport_error(STORAGE_PUT, path, exc) from None
        if not 200 <= response.status_code < 300:
            raise error_for_status(
                STORAGE_PUT, path, response.status_code, response.content, response.headers.get("Retry-After")
            )

    def execute_job(self, job_execution_id: str, job_payload_schema_instance: Mapping[str, Any]) -> dict:
        """
        Start an initiated job with its inputs. Retried only where Opus provably did not act.

        :param job_execution_id: the job from :meth:`initiate_job`.
        :param job_payload_schema_instance: ``{variable_name: {"value": ..., "type": ...}}``;
            build it with :mod:`airflow_provider_opus.payload` to have it checked first.
        :return: Opus's answer (success, message, jobExecutionId, jobPayloadSchemaInstance).
        """
        _job_id_param(job_execution_id)
        body = {
            "jobExecutionId": job_execution_id,
            "jobPayloadSchemaInstance": dict(job_payload_schema_instance),
        }
        return self._call(EXECUTE_JOB, json_body=body)

    def get_job_status(self, job_execution_id: str) -> str:
        """
        The job's status as Opus sent it: ``IN PROGRESS``, ``COMPLETED``, ``FAILED`` or another string.

        :param job_execution_id: the job.
        """
        params = _job_id_param(job_execution_id)
        return _status_from(self._call(GET_JOB_STATUS, params), GET_JOB_STATUS.path(**params))

    def get_job_results(self, job_execution_id: str) -> dict:
        """
        The job's results object: ``{"jobExecutionId", "status", "results": {...}}``.

        :param job_execution_id: the job.
        """
        return self._call(GET_JOB_RESULTS, _job_id_param(job_execution_id))

    def get_job_audit_log(self, job_execution_id: str) -> list[dict]:
        """
        The job's audit trail: entries with ``timestamp``, ``actor`` and ``action``.

        :param job_execution_id: the job.
        """
        params = _job_id_param(job_execution_id)
        return _audit_trail_from(self._call(GET_JOB_AUDIT_LOG, params), GET_JOB_AUDIT_LOG.path(**params))

    def wait_for_job(
        self,
        job_execution_id: str,
        poll_interval: float = 30.0,
        timeout: float | None = None,
        max_poll_interval: float | None = None,
    ) -> str:
        """
        Block until the job leaves ``IN PROGRESS``; for non-deferrable tasks.

        :param job_execution_id: the job.
        :param poll_interval: seconds between status checks.
        :param timeout: seconds to wait at most; None waits as long as the job runs.
        :param max_poll_interval: let the wait between checks grow with the time waited, up to this
            many seconds (see :mod:`airflow_provider_opus.polling`); None keeps ``poll_interval``.
        :return: the final status (``COMPLETED``, ``FAILED`` or any other non-running status).
        :raises OpusJobTimeoutError: the timeout passed; the job keeps running in Opus.
        """
        check_poll_intervals(poll_interval, max_poll_interval)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        last_status: str | None = None
        while True:
            status = self.get_job_status(job_execution_id)
            if status != last_status:
                self.log.info("Opus job %s is %s (after %.0f s)", job_execution_id, status, time.monotonic() - started)
                last_status = status
            if JobStatus.is_terminal(status):
                return status
            wait = next_poll_wait(poll_interval, max_poll_interval, time.monotonic() - started)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise OpusJobTimeoutError(job_execution_id, last_status, timeout)
                wait = min(wait, remaining)
            time.sleep(wait)

    def test_connection(self) -> tuple[bool, str]:
        """
        Make one cheap authenticated request and say what it proved.

        Asks for the status of a job that does not exist: a 404 means the key was accepted.
        """
        try:
            settings = self.settings
            self._send_once(GET_JOB_STATUS, GET_JOB_STATUS.path(job_execution_id=CONNECTION_TEST_JOB_ID))
        except OpusConnectionConfigError as exc:
            return False, str(exc)
        except OpusNotFoundError:
            return True, f"Connected to {settings.base_url}: the service key was accepted."
        except OpusAuthError as exc:
            return (
                False,
                f"{settings.base_url} refused the service key (HTTP {exc.http_status}): check the password.",
            )
        except OpusTransportError as exc:
            return False, f"Could not reach {settings.base_url}: {exc.reason}."
        except OpusRequestError as exc:
            return False, f"{settings.base_url} answered unexpectedly, so the key is unproven: {exc}"
        return True, f"Connected to {settings.base_url}: the service key was accepted."


class OpusAsyncHook(_OpusBaseHook):
    """
    Async reads of the Opus API on ``aiohttp``, for triggers: nothing here blocks the event loop.

    Hooks on the same event loop and connection share one ``aiohttp`` session, so a triggerer
    polling thousands of jobs keeps one pool of at most 100 keep-alive connections instead of a
    session and a connection per trigger. A hook takes its share on first use; release it with
    :meth:`close` or use the hook as ``async with OpusAsyncHook(...) as hook:``. The session is
    closed when its last hook releases it.

    :param opus_conn_id: the Airflow connection of type ``opus``.
    :param timeout: seconds to wait for each response; overrides the connection's ``timeout``.
    :param retry_limit: retries of a failed call (same policy as :class:`OpusHook`).
    :param retry_delay: base delay between retries in seconds.
    """

    def __init__(
        self,
        opus_conn_id: str = _OpusBaseHook.default_conn_name,
        timeout: float | None = None,
        retry_limit: int = 3,
        retry_delay: float = 1.0,
    ) -> None:
        super().__init__(opus_conn_id, timeout, retry_limit, retry_delay)
        self._settings: OpusConnectionSettings | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OpusAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release this hook's share of the HTTP session; the last hook to let go closes it."""
        if self._session is not None and self._settings is not None:
            session, self._session = self._session, None
            await _shared_sessions.release(self._settings, session)

    async def get_settings(self) -> OpusConnectionSettings:
        """The checked connection settings, fetched without blocking the event loop."""
        if self._settings is None:
            conn = await BaseHook.aget_connection(self.opus_conn_id)
            self._settings = OpusConnectionSettings.from_connection(conn, self.timeout)
        return self._settings

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = _shared_sessions.acquire(await self.get_settings())
        return self._session

    async def _send_once(self, endpoint: Endpoint, path: str) -> Any:
        import aiohttp

        session = await self._get_session()
        url = (await self.get_settings()).base_url + path
        try:
            async with session.request(endpoint.method, url, allow_redirects=False) as response:
                body = await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _aiohttp_transport_error(endpoint, path, exc) from None
        return read_response(endpoint, path, status, body, retry_after)

    async def _call(self, endpoint: Endpoint, path_params: Mapping[str, str]) -> Any:
        path = endpoint.path(**path_params)
        return await self.retry_policy.acall(
            endpoint, f"{endpoint.method} {path}", lambda: self._send_once(endpoint, path)
        )

    async def get_job_status(self, job_execution_id: str) -> str:
        """
        The job's status as Opus sent it.

        :param job_execution_id: the job.
        """
        params = _job_id_param(job_execution_id)
        return _status_from(await self._call(GET_JOB_STATUS, params), GET_JOB_STATUS.path(**params))

    async def get_job_results(self, job_execution_id: str) -> dict:
        """
        The job's results object.

        :param job_execution_id: the job.
        """
        return await self._call(GET_JOB_RESULTS, _job_id_param(job_execution_id))

    async def get_job_audit_log(self, job_execution_id: str) -> list[dict]:
        """
        The job's audit trail.

        :param job_execution_id: the job.
        """
        params = _job_id_param(job_execution_id)
        return _audit_trail_from(await self._call(GET_JOB_AUDIT_LOG, params), GET_JOB_AUDIT_LOG.path(**params))
