"""Hooks for the Opus Job Operator API.

:class:`OpusHook` (``requests``) serves operators and the blocking sensor;
:class:`OpusAsyncHook` (``aiohttp``) serves the trigger. Both read the endpoint table and
response rules of :mod:`airflow_provider_opus.api`, the connection of
:mod:`airflow_provider_opus.connection`, and retry by the one policy of
:mod:`airflow_provider_opus.retry`; transport failures of either library mean the same
by :mod:`airflow_provider_opus.transport`.

The two hooks are twins where both read the API: each has its own ``_send_once`` and
``_call`` and its own ``get_job_status``, ``get_job_results`` and ``get_job_audit_log``,
because one blocks and one awaits; everything they decide is in the modules above.
:class:`OpusAsyncHook` lives in :mod:`airflow_provider_opus.hooks.opus_async` and is
importable from here; the file transfers of :class:`OpusHook` (``get_upload_url``, ``upload_file``,
``download_file``) live in :mod:`airflow_provider_opus.hooks.transfers`.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow_provider_opus.api import (
    DEFAULT_APP_URL,
    DEFAULT_BASE_URL,
    EXECUTE_JOB,
    GET_JOB_AUDIT_LOG,
    GET_JOB_RESULTS,
    GET_JOB_STATUS,
    GET_WORKFLOW,
    INITIATE_JOB,
    SERVICE_KEY_HEADER,
    Endpoint,
    checked_job_id,
    job_execution_id_from,
    job_results_from,
    read_response,
    status_from,
)
from airflow_provider_opus.audit import AuditLog, audit_log_from
from airflow_provider_opus.compat import connection_form_widgets, connection_ui_field_behaviour
from airflow_provider_opus.connection import USER_AGENT, OpusConnectionSettings
from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusBadRequestError,
    OpusConnectionConfigError,
    OpusInvalidArgumentError,
    OpusJobTimeoutError,
    OpusNotFoundError,
    OpusRequestError,
    OpusTransportError,
    redact,
)
from airflow_provider_opus.get_provider_info import get_provider_info
from airflow_provider_opus.hooks.base import OpusBaseHook
from airflow_provider_opus.hooks.opus_async import OpusAsyncHook
from airflow_provider_opus.hooks.transfers import OpusFileTransfers
from airflow_provider_opus.polling import check_poll_intervals, check_timeout, next_poll
from airflow_provider_opus.retry import may_have_acted
from airflow_provider_opus.status import DEFAULT_STATUS_RULES, StatusRules
from airflow_provider_opus.transport import (
    READ_CHUNK_BYTES,
    ResponseBody,
    requests_network,
    response_too_slow,
    transport_error,
)
from airflow_provider_opus.urls import checked_callback_url
from airflow_provider_opus.workflows import (
    WORKFLOW_ID_HINT,
    WorkflowVersion,
    initiate_job_body,
    is_uuid,
    job_payload_schema_from,
    workspaces_field,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import requests

__all__ = ["CONNECTION_TEST_JOB_ID", "OpusAsyncHook", "OpusHook"]

CONNECTION_TEST_JOB_ID = "airflow-connection-test"


class OpusHook(OpusFileTransfers, OpusBaseHook):
    """
    Call the Opus Job Operator API, one method per endpoint, with retries.

    :param opus_conn_id: the Airflow connection of type ``opus``: host is the API base URL
        (empty for https://operator.opus.com), password the service key.
    :param timeout: seconds a whole call may take, answer included; overrides the connection's ``timeout``.
    :param retry_limit: retries of a failed call where retrying is safe (see :mod:`airflow_provider_opus.retry`).
    :param retry_delay: base delay between retries in seconds (grows exponentially, with jitter).
    """

    # Airflow 3.1 builds the connection form from these two methods, and only from a hook class's
    # own (not inherited ones); 3.2+ reads the provider info and does not call them. Both are built
    # from that provider info, so the form is the same on every minor.

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

    @cached_property
    def session(self) -> requests.Session:
        """The API session: carries the service key, reused across calls for keep-alive."""
        session = _session_without_environment()
        session.headers.update(self.settings.api_headers)
        return session

    def get_conn(self) -> requests.Session:
        """Return the API session (:attr:`session`), as Airflow tooling expects of a hook."""
        return self.session

    @cached_property
    def storage_session(self) -> requests.Session:
        """A bare session for presigned uploads: no service key, no connection headers, no credentials."""
        session = _session_without_environment()
        session.headers.clear()
        session.headers["User-Agent"] = USER_AGENT
        return session

    # -- transport ---------------------------------------------------------------------------

    def _send_once(self, endpoint: Endpoint, path: str, json_body: Any = None) -> Any:
        url = self.settings.base_url + path
        status, body, retry_after = self._exchange(self.session, endpoint.method, url, path, json=json_body)
        return read_response(endpoint, path, status, body, retry_after)

    def _exchange(
        self, session: requests.Session, method: str, url: str, path: str, *, upload: bool = False, **kwargs: Any
    ) -> tuple[int, bytes, str | None]:
        """
        Send one request and read its answer whole within the connection's timeout, up to a size limit.

        ``requests`` bounds the connect and each socket read by the timeout; the deadline of the
        whole call is checked here between the reads of the body, each at most one socket read
        (``read1``), so a server that drips bytes ends the call at the latest about one timeout past
        the deadline (the last read may wait that long). For an upload the deadline counts from
        when the answer starts: sending the file takes as long as it is large. The status line and
        headers are bounded per read only: a server that drips those is held to each read's timeout,
        not to the deadline. The body is kept up to
        :data:`~airflow_provider_opus.transport.MAX_RESPONSE_BYTES`.

        :param session: the API session or the bare storage session.
        :param method: the HTTP method.
        :param url: the whole URL.
        :param path: the path, for errors (no host, no signature).
        :param upload: the request streams a file.
        :param kwargs: more arguments of ``requests.Session.request`` (the body).
        :return: the status, the body and the ``Retry-After`` header.
        """
        import requests
        from urllib3.exceptions import HTTPError

        settings = self.settings
        deadline = time.monotonic() + settings.timeout
        try:
            with session.request(
                method,
                url,
                timeout=(settings.connect_timeout, settings.timeout),
                # A redirect could carry the service key to another host: never follow one.
                allow_redirects=False,
                stream=True,
                **requests_network(settings, url),  # the proxy and the CAs, as the async hook's
                **kwargs,
            ) as response:
                if upload:
                    deadline = time.monotonic() + settings.timeout
                body = ResponseBody(method, path, response.status_code, response.headers.get("Content-Length"))
                while body.wants_more:
                    if time.monotonic() > deadline:
                        raise response_too_slow(method, path, settings.timeout)
                    chunk = response.raw.read1(READ_CHUNK_BYTES, decode_content=True)
                    if not chunk:
                        break
                    body.add(chunk)
        except (requests.RequestException, HTTPError) as exc:  # urllib3's own errors come from read1
            error = transport_error(method, path, exc, settings.timeout)
            waited_out = isinstance(error, OpusTransportError) and error.request_sent and time.monotonic() > deadline
            if waited_out:  # a read that waited out the timeout
                raise response_too_slow(method, path, settings.timeout) from None
            raise error from None
        return response.status_code, body.content, response.headers.get("Retry-After")

    def _call(
        self,
        endpoint: Endpoint,
        path_params: Mapping[str, str] | None = None,
        json_body: Any = None,
        query: Mapping[str, str] | None = None,
    ) -> Any:
        path = endpoint.path(**(path_params or {}))
        if query:
            path += "?" + urlencode(query)
        description = f"{endpoint.method} {path}"
        try:
            return self.retry_policy.call(endpoint, description, lambda: self._send_once(endpoint, path, json_body))
        except OpusAuthError:
            # The key may have been rotated since this hook read the connection: a new key gets one more try.
            if not self._key_changed():
                raise
            return self.retry_policy.call(endpoint, description, lambda: self._send_once(endpoint, path, json_body))

    def _key_changed(self) -> bool:
        """Read the connection again (settings and session); tell whether its service key changed."""
        refused = self.settings.service_key
        for name in ("settings", "session"):
            self.__dict__.pop(name, None)
        return self.settings.service_key != refused

    # -- API ---------------------------------------------------------------------------------

    def get_workflow(self, workflow_id: str, version: int | str | WorkflowVersion | None = None) -> dict:
        """
        Return the whole details object of a workflow, as Opus sent it (a ``jobPayloadSchema``, or a v2 graph).

        :param workflow_id: the workflow id, as in ``app.opus.com/app/workflow/{workflow_id}``: a UUID, or
            an older 16-character id.
        :param version: describe this version (a number, or a version's UUID); None for the latest active one.
        """
        if not isinstance(workflow_id, str) or not workflow_id.strip():
            raise OpusInvalidArgumentError(f"workflow_id must be a non-empty string, got {workflow_id!r}")
        pin = version if isinstance(version, WorkflowVersion) else WorkflowVersion.parse(version, "version")
        try:
            return self._call(GET_WORKFLOW, {"workflow_id": workflow_id}, query=pin.query if pin else None)
        except (OpusNotFoundError, OpusBadRequestError) as exc:
            if is_uuid(workflow_id):
                raise
            # Opus's v2 workflows are known by UUIDs only: an older id is the likely mistake.
            raise type(exc)(
                exc.method,
                exc.path,
                f"{exc.reason}: workflow {workflow_id!r} is not a UUID, and v2 workflows use UUIDs: {WORKFLOW_ID_HINT}",
                status_code=exc.http_status,
                server_message=exc.server_message,
            ) from None

    def get_job_payload_schema(self, workflow_id: str, version: int | str | WorkflowVersion | None = None) -> dict:
        """
        Return the workflow's inputs as a ``jobPayloadSchema`` keyed by variable name (read from a v2 graph too).

        :param workflow_id: the workflow id.
        :param version: the version to read (see :meth:`get_workflow`).
        """
        path = GET_WORKFLOW.path(workflow_id=workflow_id)
        return job_payload_schema_from(self.get_workflow(workflow_id, version), path)

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
        body = initiate_job_body(
            workflow_id, title, description, version=pin, source=source, ref_user_id=ref_user_id, workspaces=workspaces
        )
        try:
            return job_execution_id_from(self._call(INITIATE_JOB, json_body=body), INITIATE_JOB.path())
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
        :param job_payload_schema_instance: ``{variable_name: {"value": ..., "type": ...}}``;
            build it with :mod:`airflow_provider_opus.payload` to have it checked first.
        :param callback_url: the https URL Opus POSTs the job's result to (``callbackUrl``, required by
            today's Opus); None takes the connection's ``callback_url``, and sends none if it has none.
        :param workspaces: workspace ids Opus checks access against.
        :return: Opus's answer (success, message, jobExecutionId, ...).
        """
        checked_job_id(job_execution_id)
        callback = checked_callback_url(callback_url, "callback_url") or self.settings.callback_url
        body: dict[str, Any] = {
            "jobExecutionId": job_execution_id,
            "jobPayloadSchemaInstance": dict(job_payload_schema_instance),
        }
        if callback:
            body["callbackUrl"] = callback
        if workspaces is not None:
            body["workspaces"] = workspaces_field(workspaces)
        try:
            return self._call(EXECUTE_JOB, json_body=body)
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
        params = checked_job_id(job_execution_id)
        return status_from(self._call(GET_JOB_STATUS, params), GET_JOB_STATUS.path(**params))

    def get_job_results(self, job_execution_id: str) -> dict:
        """
        Return the job's results object: ``{"jobExecutionId", "status", "results": {...}}``.

        :param job_execution_id: the job.
        """
        params = checked_job_id(job_execution_id)
        return job_results_from(self._call(GET_JOB_RESULTS, params), GET_JOB_RESULTS.path(**params))

    def get_job_audit_log(self, job_execution_id: str) -> AuditLog:
        """
        Return the job's audit log as Opus sent it: the ``auditTrail`` list, or today's node-level object.

        :param job_execution_id: the job.
        """
        params = checked_job_id(job_execution_id)
        return audit_log_from(self._call(GET_JOB_AUDIT_LOG, params), GET_JOB_AUDIT_LOG.path(**params))

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
        :param max_poll_interval: let the wait between checks grow with the time waited, up to this
            many seconds (see :mod:`airflow_provider_opus.polling`); None keeps ``poll_interval``.
        :param status_rules: what each status means (see :mod:`airflow_provider_opus.status`);
            a status in no list keeps the wait going, with a warning.
        :return: the final status as Opus spelled it (``COMPLETED`` or a failed status).
        :raises OpusJobTimeoutError: the timeout passed; the job keeps running in Opus.
        """
        check_poll_intervals(poll_interval, max_poll_interval)
        check_timeout(timeout)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
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
                raise OpusJobTimeoutError(job_execution_id, last_status, timeout)
            now = time.monotonic()
            step = next_poll(
                poll_interval, max_poll_interval, now - started, None if deadline is None else deadline - now
            )
            final = step.final
            time.sleep(step.wait)

    def test_connection(self) -> tuple[bool, str]:
        """
        Make two cheap requests and say what they proved (the answer cleaned of secrets, as every message is).

        Asks for the status of a job that does not exist, with the key and then without it.
        Only an API that checks the key answers 404 (no such job) to the first and 401 or 403 to
        the second: any web server answers 404 to both, whatever the key.
        """
        passed, message = self._test_connection()
        return passed, redact(message)

    def _test_connection(self) -> tuple[bool, str]:
        path = GET_JOB_STATUS.path(job_execution_id=CONNECTION_TEST_JOB_ID)
        try:
            settings = self.settings
            self._send_once(GET_JOB_STATUS, path)
        except OpusConnectionConfigError as exc:
            return False, str(exc)
        except OpusNotFoundError:
            return self._key_proven(settings, path)
        except OpusAuthError as exc:
            return (
                False,
                f"{settings.base_url} refused the service key (HTTP {exc.http_status}): check the password.",
            )
        except OpusTransportError as exc:
            return False, f"Could not reach {settings.base_url}: {exc.reason}."
        except OpusRequestError as exc:
            return False, f"{settings.base_url} answered unexpectedly, so the key is unproven: {exc}"
        return self._key_proven(settings, path)

    def _key_proven(self, settings: OpusConnectionSettings, path: str) -> tuple[bool, str]:
        """Tell whether the host refuses ``path`` without the key: only then did its 404 with the key prove the key."""
        try:
            # None drops the session's key header for this one request.
            status_code, _, _ = self._exchange(
                self.session, "GET", settings.base_url + path, path, headers={SERVICE_KEY_HEADER: None}
            )
        except OpusTransportError as exc:
            return False, f"Could not reach {settings.base_url}: {exc.reason}."
        if status_code in (401, 403):
            return True, f"Connected to {settings.base_url}: the service key was accepted."
        return (
            False,
            f"{settings.base_url} is not the Opus API: it answered HTTP {status_code} to a request without "
            f"the service key, where Opus refuses it. Check the connection's host: the API is {DEFAULT_BASE_URL} "
            f"(the web app, {DEFAULT_APP_URL}, is not).",
        )


def _session_without_environment() -> requests.Session:
    """Return a ``requests`` session that reads nothing from the environment, above all no credentials."""
    import requests  # imported on first use: it costs DAG files that only build operators

    session = requests.Session()
    # A trusting session adds ~/.netrc credentials (a `default` entry fits every host) as an
    # Authorization header: to the storage host, or next to the key to the API host. The aiohttp
    # sessions of the async hook never read the environment either (aiohttp's default). Proxies
    # from the environment apply by the connection's rule, given with each request.
    session.trust_env = False
    return session
