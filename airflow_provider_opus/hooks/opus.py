"""
Hooks for the Opus Job Operator API.

:class:`OpusHook` serves operators and the blocking sensor; :class:`OpusAsyncHook` (in
:mod:`airflow_provider_opus.hooks.opus_async`, importable from here) serves the trigger. Both make their calls with
:func:`airflow_provider_opus.transport.exchange` on ``aiohttp``: the blocking hook on an event loop of its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from contextlib import suppress
from functools import cached_property, partial
from itertools import chain
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlencode, urlsplit

from airflow_provider_opus import api, downloads, transport, workflows
from airflow_provider_opus.audit import AuditLog, audit_log_from
from airflow_provider_opus.compat import connection_form_widgets, connection_ui_field_behaviour
from airflow_provider_opus.connection import OpusConnectionSettings
from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusBadRequestError,
    OpusConnectionConfigError,
    OpusJobTimeoutError,
    OpusNotFoundError,
    OpusRequestError,
    OpusTransportError,
    redact,
)
from airflow_provider_opus.files import check_local_files, content_type_for, upload_url_request
from airflow_provider_opus.get_provider_info import get_provider_info
from airflow_provider_opus.hooks.base import OpusBaseHook
from airflow_provider_opus.hooks.opus_async import OpusAsyncHook
from airflow_provider_opus.polling import check_poll_intervals, check_timeout, next_poll
from airflow_provider_opus.retry import may_have_acted
from airflow_provider_opus.status import DEFAULT_STATUS_RULES, StatusRules
from airflow_provider_opus.urls import checked_callback_url, checked_url
from airflow_provider_opus.workflows import WorkflowVersion

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping

__all__ = ["CONNECTION_TEST_JOB_ID", "OpusAsyncHook", "OpusHook"]

CONNECTION_TEST_JOB_ID = "airflow-connection-test"


class OpusHook(OpusBaseHook):
    """
    Call the Opus Job Operator API, one method per endpoint, with retries; upload and download files.

    :param opus_conn_id: the Airflow connection of type ``opus``: host is the API base URL
        (empty for https://operator.opus.com), password the service key.
    :param timeout: seconds a whole call may take, answer included; overrides the connection's ``timeout``.
    :param retry_limit: retries of a failed call where retrying is safe (see :mod:`airflow_provider_opus.retry`).
    :param retry_delay: base delay between retries in seconds (grows exponentially, with jitter).
    """

    # Airflow 3.1 builds the connection form from these two, and only from a hook class's own;
    # 3.2+ reads the provider info, which both are built from, so the form is the same on every minor.

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the connection form's extra fields, from the ``conn-fields`` of the provider info."""
        return connection_form_widgets(get_provider_info()["connection-types"][0])

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return how the connection form shows its standard fields, from the provider info."""
        return connection_ui_field_behaviour(get_provider_info()["connection-types"][0])

    @cached_property
    def settings(self) -> OpusConnectionSettings:
        """The checked connection settings (read once per hook)."""
        return OpusConnectionSettings.from_connection(self.get_connection(self.opus_conn_id), self.timeout)

    def get_conn(self) -> OpusConnectionSettings:
        """Return the checked connection settings (the HTTP sessions belong to the hook's private event loop)."""
        return self.settings

    # -- transport: aiohttp on a private event loop, one per thread ----------------------------

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coroutine.close()
            raise RuntimeError(
                "OpusHook blocks, and it was called inside a running event loop: await OpusAsyncHook's methods "
                "there, or call OpusHook in a thread (asyncio.to_thread)"
            )
        return _private_loop().run_until_complete(_after_closes_are_read(coroutine))

    def _exchange(self, method: str, url: str, path: str, **kwargs: Any) -> tuple[int, bytes, str | None]:
        settings = self.settings
        return self._run(transport.exchange(settings, method, url, path, settings.proxy_for(url), **kwargs))

    def _send_once(self, endpoint: api.Endpoint, path: str, json_body: Any = None) -> Any:
        url = self.settings.base_url + path
        status, body, retry_after = self._exchange(endpoint.method, url, path, json=json_body)
        return api.read_response(endpoint, path, status, body, retry_after)

    def _call(self, endpoint: api.Endpoint, path: str, json_body: Any = None) -> Any:
        send = partial(self._send_once, endpoint, path, json_body)
        try:
            return self.retry_policy.call(endpoint, f"{endpoint.method} {path}", send)
        except OpusAuthError:
            # The key may have been rotated since this hook read the connection: a new key gets one more try.
            refused = self.settings.service_key
            self.__dict__.pop("settings", None)
            if self.settings.service_key == refused:
                raise
            return self.retry_policy.call(endpoint, f"{endpoint.method} {path}", send)

    # -- API ---------------------------------------------------------------------------------

    def get_workflow(self, workflow_id: str, version: int | str | WorkflowVersion | None = None) -> dict:
        """
        Return a workflow's whole details object as Opus sent it (a ``jobPayloadSchema``, or a v2 graph).

        :param workflow_id: the id in ``app.opus.com/app/workflow/{workflow_id}``: a UUID, or an older 16-character id.
        :param version: describe this version (a number, or a version's UUID); None for the latest active one.
        """
        path = api.GET_WORKFLOW.path(workflow_id=workflow_id)  # checks the id first
        pin = version if isinstance(version, WorkflowVersion) else WorkflowVersion.parse(version, "version")
        if pin:
            path += "?" + urlencode(pin.query)
        try:
            return self._call(api.GET_WORKFLOW, path)
        except (OpusNotFoundError, OpusBadRequestError) as exc:
            if workflows.is_uuid(workflow_id):
                raise
            # Opus's v2 workflows are known by UUIDs only: an older id is the likely mistake.
            raise exc.with_reason(
                f"workflow {workflow_id!r} is not a UUID, and v2 workflows use UUIDs: {workflows.WORKFLOW_ID_HINT}"
            ) from None

    def get_job_payload_schema(self, workflow_id: str, version: int | str | WorkflowVersion | None = None) -> dict:
        """
        Return the workflow's inputs as a ``jobPayloadSchema`` keyed by variable name (read from a v2 graph too).

        :param workflow_id: the workflow id.
        :param version: the version to read (see :meth:`get_workflow`).
        """
        path = api.GET_WORKFLOW.path(workflow_id=workflow_id)
        return workflows.job_payload_schema_from(self.get_workflow(workflow_id, version), path)

    def initiate_job(
        self,
        workflow_id: str,
        title: str,
        description: str,
        *,
        version: int | str | WorkflowVersion | None = None,
        source: str | None = None,
        ref_user_id: str | None = None,
        workspaces: str | list[str] | None = None,
    ) -> str:
        """
        Create a job for a workflow. Retried only where Opus provably did not act.

        Only the optional fields given are sent, so either API generation takes the body.

        :param workflow_id: the workflow id.
        :param title: the job's title.
        :param description: the job's description.
        :param version: pin the job to this version (a number, or a version's UUID); None runs the latest.
        :param source: where the job came from, one of :data:`~airflow_provider_opus.workflows.JOB_SOURCES`.
        :param ref_user_id: the Opus user the job is attributed to.
        :param workspaces: workspace ids Opus checks access against (a list or a comma-separated string).
        :return: the jobExecutionId.
        """
        pin = version if isinstance(version, WorkflowVersion) else WorkflowVersion.parse(version, "version")
        body = workflows.initiate_job_body(
            workflow_id, title, description, version=pin, source=source, ref_user_id=ref_user_id, workspaces=workspaces
        )
        path = api.INITIATE_JOB.path()
        try:
            return api.job_execution_id_from(self._call(api.INITIATE_JOB, path, body), path)
        except OpusRequestError as exc:
            if not may_have_acted(exc):
                raise
            raise exc.with_reason(
                f"Opus may have created the job anyway: look for a job titled {title!r} in Opus before "
                "running this again, or a second job will be billed"
            ) from None

    def execute_job(
        self,
        job_execution_id: str,
        job_payload_schema_instance: Mapping[str, Any],
        *,
        callback_url: str | None = None,
        workspaces: str | list[str] | None = None,
    ) -> dict:
        """
        Start an initiated job with its inputs. Retried only where Opus provably did not act.

        :param job_execution_id: the job from :meth:`initiate_job`.
        :param job_payload_schema_instance: ``{variable_name: {"value": ..., "type": ...}}``, as
            :mod:`airflow_provider_opus.payload` builds and checks it.
        :param callback_url: the https URL Opus POSTs the result to (required by today's Opus); None takes
            the connection's ``callback_url``, if any.
        :param workspaces: workspace ids Opus checks access against.
        :return: Opus's answer (success, message, jobExecutionId, ...).
        """
        api.checked_job_id(job_execution_id)
        callback = checked_callback_url(callback_url, "callback_url") or self.settings.callback_url
        body: dict[str, Any] = {
            "jobExecutionId": job_execution_id,
            "jobPayloadSchemaInstance": dict(job_payload_schema_instance),
        }
        if callback:
            body["callbackUrl"] = callback
        if workspaces is not None:
            body["workspaces"] = workflows.workspaces_field(workspaces)
        try:
            return self._call(api.EXECUTE_JOB, api.EXECUTE_JOB.path(), body)
        except OpusRequestError as exc:
            if not may_have_acted(exc):
                raise
            raise exc.with_reason(
                f"Opus may have started job {job_execution_id} anyway: check its status in Opus before running it again"
            ) from None

    def get_job_status(self, job_execution_id: str) -> str:
        """
        Return the job's status as Opus sent it (see :mod:`airflow_provider_opus.status` for what it means).

        :param job_execution_id: the job.
        """
        path = api.GET_JOB_STATUS.path(**api.checked_job_id(job_execution_id))
        return api.status_from(self._call(api.GET_JOB_STATUS, path), path)

    def get_job_results(self, job_execution_id: str) -> dict:
        """
        Return the job's results object: ``{"jobExecutionId", "status", "results": {...}}``.

        :param job_execution_id: the job.
        """
        path = api.GET_JOB_RESULTS.path(**api.checked_job_id(job_execution_id))
        return api.job_results_from(self._call(api.GET_JOB_RESULTS, path), path)

    def get_job_audit_log(self, job_execution_id: str) -> AuditLog:
        """
        Return the job's audit log as Opus sent it: the ``auditTrail`` list, or today's node-level object.

        :param job_execution_id: the job.
        """
        path = api.GET_JOB_AUDIT_LOG.path(**api.checked_job_id(job_execution_id))
        return audit_log_from(self._call(api.GET_JOB_AUDIT_LOG, path), path)

    def wait_for_job(
        self,
        job_execution_id: str,
        poll_interval: float = 30.0,
        timeout: float | None = None,
        max_poll_interval: float | None = None,
        status_rules: StatusRules = DEFAULT_STATUS_RULES,
    ) -> str:
        """
        Block until the job ends, by the status rules; for non-deferrable tasks.

        :param job_execution_id: the job.
        :param poll_interval: seconds between status checks.
        :param timeout: seconds to wait at most; None waits as long as the job runs.
        :param max_poll_interval: let the wait grow with the time waited, up to this; None keeps ``poll_interval``.
        :param status_rules: what each status means (:mod:`airflow_provider_opus.status`); an unknown one waits on.
        :return: the final status as Opus spelled it (``COMPLETED`` or a failed status).
        :raises OpusJobTimeoutError: the timeout passed; the job keeps running in Opus.
        """
        check_poll_intervals(poll_interval, max_poll_interval)
        check_timeout(timeout)
        started = time.monotonic()
        last_status: str | None = None
        warned: set[str] = set()
        final = False
        while True:
            status = self.get_job_status(job_execution_id)
            if status != last_status:
                self.log.info("Opus job %s is %s (after %.0f s)", job_execution_id, status, time.monotonic() - started)
                last_status = status
            if status_rules.poll_outcome(job_execution_id, status, warned, self.log).is_final:
                return status
            if final:
                raise OpusJobTimeoutError(job_execution_id, status, timeout)
            waited = time.monotonic() - started
            wait, final = next_poll(
                poll_interval, max_poll_interval, waited, None if timeout is None else timeout - waited
            )
            time.sleep(wait)

    def test_connection(self) -> tuple[bool, str]:
        """
        Ask for a job that does not exist, with the key and then without it, and say what that proved.

        Only an API that checks the key answers 404 to the first and 401 or 403 to the second; any
        web server answers 404 to both.
        """
        path = api.GET_JOB_STATUS.path(job_execution_id=CONNECTION_TEST_JOB_ID)
        ok = False
        try:
            base = self.settings.base_url
            with suppress(OpusNotFoundError):
                self._send_once(api.GET_JOB_STATUS, path)
            # The storage session carries no key.
            status, _, _ = self._exchange(
                "GET", base + path, path, storage=True, headers={"Accept": "application/json"}
            )
        except OpusConnectionConfigError as exc:
            message = str(exc)
        except OpusAuthError as exc:
            message = f"{base} refused the service key (HTTP {exc.http_status}): check the password."
        except OpusTransportError as exc:
            message = f"Could not reach {base}: {exc.reason}."
        except OpusRequestError as exc:
            message = f"{base} answered unexpectedly, so the key is unproven: {exc}"
        else:
            ok = status in (401, 403)
            message = (
                f"Connected to {base}: the service key was accepted."
                if ok
                else f"{base} is not the Opus API: it answered HTTP {status} to a request without the service "
                f"key, where Opus refuses it. Check the connection's host: the API is {api.DEFAULT_BASE_URL} "
                f"(the web app, {api.DEFAULT_APP_URL}, is not)."
            )
        return ok, redact(message)

    # -- files -------------------------------------------------------------------------------

    def get_upload_url(
        self,
        file_extension: str,
        access_scope: str | None = "organization",
        *,
        original_name: str | None = None,
        workspace_id: str | None = None,
    ) -> dict:
        """
        Ask for a presigned upload URL and the fileUrl that will refer to the file.

        :param file_extension: the file's extension, e.g. ``.pdf``.
        :param access_scope: who may read the file: all, user, workspace or organization; None for unlisted.
        :param original_name: the file's name, shown in the Opus file library.
        :param workspace_id: the workspace that owns the file (required for the ``workspace`` scope).
        :return: ``{"presignedUrl": ..., "fileUrl": ...}``, both checked to be URL strings.
        """
        request = upload_url_request(file_extension, access_scope, original_name, workspace_id)
        body = self._call(api.GET_UPLOAD_URL, api.GET_UPLOAD_URL.path(), request)
        api.upload_urls_from(body, api.GET_UPLOAD_URL.path())
        return body

    def upload_file(
        self,
        path: str | os.PathLike[str],
        access_scope: str | None = "organization",
        content_type: str | None = None,
        *,
        workspace_id: str | None = None,
    ) -> str:
        """
        Check a local file and stream it to a presigned URL; a retry asks for a fresh URL.

        The PUT goes through the storage session, so the service key never reaches the storage host.

        :param path: the local file (its name goes along as ``originalName``).
        :param access_scope: who may read the file: all, user, workspace or organization; None for unlisted.
        :param content_type: the Content-Type to send; by default from the extension.
        :param workspace_id: the workspace that owns the file (required for the ``workspace`` scope).
        :return: the fileUrl to use as the value of a ``file`` input.
        """
        local_path = os.fspath(path)
        check_local_files([local_path], self.settings.max_upload_bytes)
        extension = os.path.splitext(local_path)[1]
        request = upload_url_request(extension, access_scope, os.path.basename(local_path), workspace_id)
        headers = {"Content-Type": content_type or content_type_for(extension)}

        def upload_once() -> str:
            urls = self._send_once(api.GET_UPLOAD_URL, api.GET_UPLOAD_URL.path(), request)
            presigned_url, file_url = api.upload_urls_from(urls, api.GET_UPLOAD_URL.path())
            with open(local_path, "rb") as stream:
                self._put_stream(presigned_url, stream, headers)
            return file_url

        file_url = self.retry_policy.call(api.STORAGE_PUT, f"upload of {local_path}", upload_once)
        self.log.info("Uploaded %s (%d bytes) to %s", local_path, os.path.getsize(local_path), file_url)
        return file_url

    def _put_stream(self, url: str, stream: BinaryIO, headers: dict[str, str]) -> None:
        path = urlsplit(url).path  # no query: it holds the signature
        status, body, retry_after = self._run(_put_file(self.settings, url, path, stream, headers))
        if not 200 <= status < 300:
            raise api.storage_error_for_status(path, status, body, retry_after)

    def download_file(
        self, url: str, destination: str | os.PathLike[str] | downloads.Destination
    ) -> downloads.Destination:
        """
        Stream an output file to a local path or an ``ObjectStoragePath``; a retry starts over.

        The service key goes only to the API's host and the connection's ``file_hosts``, never through a
        redirect; the file is written whole or not at all (:mod:`airflow_provider_opus.downloads`).

        :param url: the file's URL, e.g. one of a job's ``output_files``.
        :param destination: the file to write: a path, a URL such as ``s3://bucket/key``, or an
            ``ObjectStoragePath``. Its folder is created and checked writable before the download.
        :return: the path written, as a ``Path`` or ``ObjectStoragePath``.
        """
        url = checked_url(url, "url")
        target = downloads.as_destination(destination)
        downloads.check_destination(target)
        shown = downloads.shown_url(url)
        size = self.retry_policy.call(
            api.DOWNLOAD_FILE, f"download of {shown}", lambda: self._download_once(url, target)
        )
        self.log.info("Downloaded %s (%d bytes) to %s", shown, size, target)
        return target

    def _download_once(self, url: str, target: downloads.Destination) -> int:
        chunks = _download_chunks(self.settings, url)  # the settings read off the loop (get_connection may block)
        try:
            first = self._run(_next_chunk(chunks))  # the answer's head and first bytes: errors before a file is made
            rest = iter(lambda: self._run(_next_chunk(chunks)), None)
            return downloads.write_whole(target, chain([] if first is None else [first], rest))
        finally:
            self._run(chunks.aclose())


async def _download_chunks(settings: OpusConnectionSettings, url: str) -> AsyncGenerator[bytes, None]:
    import aiohttp

    key_sent = settings.may_send_key_to(url)
    timeout = transport.per_read_timeout(settings)
    session = transport.loop_session((settings,)) or await transport.new_session((settings,))
    hops = 0
    while True:
        path = downloads.shown_url(url)
        # The bytes as stored: a .gz served with Content-Encoding: gzip stays a .gz (nor can a gzip bomb inflate).
        headers = {"Accept-Encoding": "identity"}
        if key_sent:
            headers[api.SERVICE_KEY_HEADER] = settings.service_key
        try:
            async with session.get(
                url, headers=headers, timeout=timeout, allow_redirects=False, proxy=settings.proxy_for(url)
            ) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    url, key_sent = downloads.redirect_target(url, response.headers["Location"], hops), False
                    hops += 1
                    continue
                if not 200 <= response.status < 300:
                    raise downloads.download_error_for_status(
                        path,
                        response.status,
                        await response.content.read(transport.READ_CHUNK_BYTES),
                        response.headers.get("Retry-After"),
                        key_sent=key_sent,
                        redirected=hops > 0,
                    )
                limit = settings.max_download_bytes
                downloads.check_download_size(path, response.headers.get("Content-Length"), limit)
                chunks = response.content.iter_chunked(downloads.DOWNLOAD_CHUNK_BYTES)
                async for chunk in downloads.raw_chunks(path, chunks, limit):
                    yield chunk
                return
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise transport.transport_error("GET", path, exc, settings.timeout) from None


async def _after_closes_are_read(coroutine: Coroutine[Any, Any, Any]) -> Any:
    # The private loop sleeps between calls, so a kept-alive connection that the server closed meanwhile still
    # looks open, and a billed call sent on it would fail as possibly sent. A few passes of the loop read such
    # closes first (TLS takes more than one), so the call takes a live connection: urllib3 checks a pooled
    # socket the same way before reusing it.
    for _ in range(3):
        await asyncio.sleep(0)
    return await coroutine


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


async def _put_file(
    settings: OpusConnectionSettings, url: str, path: str, stream: BinaryIO, headers: dict[str, str]
) -> tuple[int, bytes, str | None]:
    file_sent = asyncio.Event()

    async def file_chunks() -> AsyncIterator[bytes]:
        # Read on the hook's own loop: blocking it holds up no one else (aiohttp would read a file in a thread).
        while chunk := stream.read(transport.READ_CHUNK_BYTES):
            yield chunk
        file_sent.set()

    # Once the file is sent, the whole answer (head and body) must come within the timeout.
    timeout = transport.per_read_timeout(settings)
    size = os.fstat(stream.fileno()).st_size  # said up front: presigned URLs refuse a chunked body
    call = asyncio.ensure_future(
        transport.exchange(
            settings,
            api.STORAGE_PUT.method,
            url,
            path,
            settings.proxy_for(url),
            storage=True,
            timeout=timeout,
            data=file_chunks(),
            headers={**headers, "Content-Length": str(size)},
        )
    )
    sent = asyncio.ensure_future(file_sent.wait())
    await asyncio.wait({call, sent}, return_when=asyncio.FIRST_COMPLETED)
    sent.cancel()
    try:
        return await asyncio.wait_for(call, settings.timeout)  # exchange turns aiohttp's own timeouts into errors
    except asyncio.TimeoutError:
        raise transport.response_too_slow(api.STORAGE_PUT.method, path, settings.timeout) from None


class _ThreadLoop:
    """A thread's private event loop; closed, with its sessions, when the thread ends or the process exits."""

    def __init__(self) -> None:
        self.loop, self.pid = asyncio.new_event_loop(), os.getpid()
        weakref.finalize(self, _close_loop, self.loop, self.pid)


_thread_loops = threading.local()


def _private_loop() -> asyncio.AbstractEventLoop:
    # One per thread and process: its sessions keep connections warm from one call (and hook) to the next.
    current = getattr(_thread_loops, "current", None)
    if current is None or current.loop.is_closed() or current.pid != os.getpid():  # a forked child opens its own
        current = _thread_loops.current = _ThreadLoop()
    return current.loop


def _close_loop(loop: asyncio.AbstractEventLoop, pid: int) -> None:
    # Not in a forked child: closing the parent's sessions there would write to the parent's connections.
    if pid == os.getpid() and not loop.is_closed() and not loop.is_running():
        loop.run_until_complete(loop.shutdown_asyncgens())  # closes its sessions (transport._close_at_shutdown)
        loop.close()
