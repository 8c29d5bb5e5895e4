"""Errors raised by the Opus provider.

Every error is an :class:`OpusError`. Messages name the call (method and path), the HTTP
status and the server's own message where there is one; they never contain the service
key. Errors that no retry can fix (a refused key, an invalid payload, a job that ended
in failure, a misconfigured connection) also subclass ``AirflowFailException`` so the
task fails at once instead of burning its Airflow retries.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from collections.abc import Mapping


#: The secrets every message is cleaned of: the service keys of the connections read in this process.
_SECRETS: set[str] = set()
#: Credentials before a host: ``scheme://user:password@`` (any user) or ``user:password@`` without a scheme.
_USERINFO = re.compile(r"(?<=://)[^\s/?#@'\"<>]*@|(?<![\w.+-])[^\s/?#@'\":<>]+:[^\s/?#@'\"<>]*@(?=[\w\[])")
#: A URL's query and fragment (a presigned URL's signature, a proxy's token).
_QUERY = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s?#'\"<>]*)[?#][^\s'\"<>]*")
#: Signing parameters outside a whole URL: a path with its query, or a storage error body echoing them
#: (S3's ``X-Amz-Signature=...``, ``<SignatureProvided>...</SignatureProvided>``; others' ``Signature=``).
_SIGNING = re.compile(
    r"((?:X-Amz-|X-Goog-)?(?:Signature|Credential|Security-Token)(?:Provided)?[=>])[^\s&'\"<]+",
    re.IGNORECASE,
)


def register_secret(secret: str) -> None:
    """
    Remember a secret (a service key) so that :func:`redact` removes it from every message.

    Also hands it to Airflow's secret masker, which cleans task logs.

    :param secret: the secret.
    """
    if not secret or secret in _SECRETS:
        return
    _SECRETS.add(secret)
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - every supported Airflow has it
        return
    mask_secret(secret)


def redact(text: str) -> str:
    """
    Return ``text`` without secrets: known service keys, URL credentials, URL query strings and fragments.

    The one cleaning of what the provider shows: every :class:`OpusError`'s message goes through it,
    and so does any other text a user sees (a connection test's answer).

    :param text: a message.
    """
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _USERINFO.sub("***@", text)
    return _SIGNING.sub(r"\1***", _QUERY.sub(r"\1?***", text))


class OpusError(AirflowException):
    """Base class of every error raised by the Opus provider; its message is cleaned of secrets (:func:`redact`)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


class OpusConnectionConfigError(OpusError, AirflowFailException):
    """The Airflow connection cannot be used as it is (no service key, a bad host URL)."""


class OpusInvalidArgumentError(OpusError, AirflowFailException, ValueError):
    """An argument given to the provider cannot work (an empty id, a missing file, a bad scope)."""


class OpusPayloadError(OpusError, AirflowFailException):
    """
    The inputs given for a job do not fit the workflow's jobPayloadSchema.

    Raised before any billed call, with every problem listed at once.

    :param message: the whole message, listing every problem.
    :param problems: the individual problems, one string each.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems or [])


class OpusRequestError(OpusError):
    """
    A call to the Opus API failed.

    :param method: HTTP method of the call.
    :param path: path of the call, without the host (never carries the key).
    :param reason: what went wrong, in words.
    :param status_code: the HTTP status, when a response arrived (kept as ``http_status``).
    :param server_message: the ``message`` the server sent back, when there was one.
    :param retry_after: seconds the server asked us to wait (``Retry-After``), when it said.
    """

    def __init__(
        self,
        method: str,
        path: str,
        reason: str,
        *,
        status_code: int | None = None,
        server_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.reason = redact(reason)
        self.http_status = status_code
        self.server_message = None if server_message is None else redact(server_message)
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        status = f" returned HTTP {self.http_status}" if self.http_status is not None else " failed"
        detail = f": {self.server_message}" if self.server_message else ""
        return f"Opus {self.method} {self.path}{status}{detail} ({self.reason})"

    def with_reason(self, more: str) -> OpusRequestError:
        """
        Return a copy of this error, of its class, whose reason (and message) ends with ``more``.

        :param more: what to add, e.g. what the user should check.
        """
        copied = type(self).__new__(type(self))  # not copy.copy: it would call __init__ with args
        copied.__dict__.update(self.__dict__)
        copied.reason = redact(f"{self.reason}; {more}")
        copied.args = (copied._message(),)
        return copied


class OpusAuthError(OpusRequestError, AirflowFailException):
    """The service key was refused (HTTP 401 or 403): fix the connection's password."""


class OpusStorageError(OpusRequestError):
    """
    The storage host refused a presigned upload (a 4xx other than 429).

    Not about the service key (the upload carries none): a 401 or 403 means the presigned URL
    expired or does not fit the upload, and the upload is retried with a fresh URL from Opus.
    """


class OpusNotFoundError(OpusRequestError, AirflowFailException):
    """The workflow or job does not exist (HTTP 404): check the id; retrying cannot help."""


class OpusBadRequestError(OpusRequestError, AirflowFailException):
    """The server rejected the request as invalid (HTTP 400, 409 or 422): retrying cannot help."""


class OpusRateLimitError(OpusRequestError):
    """The server asked us to slow down (HTTP 429); ``retry_after`` says for how long."""


class OpusServerError(OpusRequestError):
    """The server failed (HTTP 5xx)."""


class OpusTransportError(OpusRequestError):
    """
    No usable response arrived: connection refused, timeout, or a connection dropped.

    :param request_sent: False only when the request provably never reached the server
        (connection refused, connect timeout). After a read timeout or a dropped response
        the server may have acted, so calls that start billed work are not retried.
    """

    def __init__(self, method: str, path: str, reason: str, *, request_sent: bool) -> None:
        super().__init__(method, path, reason)
        self.request_sent = request_sent


class OpusTLSError(OpusTransportError):
    """
    The server's certificate was not trusted: nothing was sent, and retrying in place cannot change that.

    Not retried in place; Airflow's task retry still applies (a certificate can be renewed meanwhile).
    """


class OpusResponseError(OpusRequestError):
    """A 2xx response whose body is not JSON or not of the documented shape."""


class OpusWorkflowSchemaError(OpusResponseError, AirflowFailException):
    """
    A workflow's schema (``GET /workflow/{id}``) has an entry the provider cannot read; the message names it.

    Raised before any billed call. A retry would read the same schema, so the task fails at once: fix
    the workflow in Opus.
    """


class OpusJobFailedError(OpusError, AirflowFailException):
    """
    An Opus job ended in a status other than COMPLETED.

    Fails the task without Airflow retries: rerunning a business workflow that failed
    would bill a second job for the same inputs. The message carries what the audit log says
    of the failure, so the reason shows in the task log: the last entries of an older audit trail,
    or one line per failed node (see :func:`airflow_provider_opus.audit.failure_details`).

    :param job_execution_id: the job.
    :param status: the final status Opus reported.
    :param audit_tail: the audit log's failure details.
    """

    def __init__(self, job_execution_id: str, status: str, audit_tail: list[dict] | None = None) -> None:
        self.job_execution_id = job_execution_id
        self.status = status
        self.audit_tail = list(audit_tail or [])
        # One line per failed node (today's audit); the older trail's entries on one line.
        nodes = "".join(
            f"\n  node {entry['node']}: {entry.get('execution_data', '')}"
            for entry in self.audit_tail
            if "node" in entry
        )
        entries = "; ".join(
            f"{entry.get('timestamp', '?')} {entry.get('actor', '?')}: {entry.get('action', '?')}"
            for entry in self.audit_tail
            if "node" not in entry
        )
        audit = (f" Failed nodes:{nodes}" if nodes else "") + (f" Last audit entries: {entries}" if entries else "")
        super().__init__(f"Opus job {job_execution_id} ended with status {status!r}.{audit}")


class OpusJobTimeoutError(OpusError):
    """
    Waiting for a job took longer than allowed. The job itself keeps running in Opus.

    :param job_execution_id: the job.
    :param last_status: the last status seen.
    :param timeout: the timeout in seconds, when known.
    """

    def __init__(self, job_execution_id: str, last_status: str | None, timeout: float | None = None) -> None:
        self.job_execution_id = job_execution_id
        self.last_status = last_status
        limit = f"within {timeout:g} s" if timeout is not None else "before its deadline"
        super().__init__(
            f"Opus job {job_execution_id} did not finish {limit} (last status {last_status!r}). "
            f"Opus has no cancel call: job {job_execution_id} keeps running."
        )


def error_event_fields(exc: BaseException) -> dict[str, Any]:
    """
    Describe an error for a trigger event, so that the resumed task can raise it again (:func:`error_from_event`).

    :param exc: the error the trigger met.
    """
    fields: dict[str, Any] = {"error_type": type(exc).__name__}
    if isinstance(exc, OpusRequestError):
        fields.update(
            method=exc.method,
            path=exc.path,
            reason=exc.reason,
            http_status=exc.http_status,
            server_message=exc.server_message,
        )
    return fields


def error_from_event(event: Mapping[str, Any]) -> OpusError | None:
    """
    Return the error a trigger event describes, if it is one that no retry can fix; else None.

    A wait in the triggerer then ends as a wait in a worker does: a refused key, an unknown job, a
    broken connection fail the task without Airflow retries.

    :param event: the trigger event's payload, with the fields of :func:`error_event_fields`.
    """
    error_type = event.get("error_type")
    if error_type in _FINAL_REQUEST_ERRORS:
        return _FINAL_REQUEST_ERRORS[error_type](
            str(event.get("method", "?")),
            str(event.get("path", "?")),
            str(event.get("reason", "")),
            status_code=event.get("http_status"),
            server_message=event.get("server_message"),
        )
    if error_type in _FINAL_ERRORS:
        return _FINAL_ERRORS[error_type](str(event.get("message", "")))
    return None


#: The errors a trigger event hands back to the task as themselves: those that skip Airflow retries.
_FINAL_REQUEST_ERRORS: dict[str, type[OpusRequestError]] = {
    cls.__name__: cls for cls in (OpusAuthError, OpusNotFoundError, OpusBadRequestError)
}
_FINAL_ERRORS: dict[str, type[OpusError]] = {
    cls.__name__: cls for cls in (OpusConnectionConfigError, OpusInvalidArgumentError)
}


#: Longest repr of a user's value shown in a message: a huge value must not swamp the error.
MAX_SHOWN_CHARS = 60


def show_value(value: object) -> str:
    """
    Return ``repr(value)`` for an error message, shortened to :data:`MAX_SHOWN_CHARS`.

    :param value: a value a user gave.
    """
    try:
        shown = repr(value)
    except ValueError:  # an int too long for a decimal string (sys.set_int_max_str_digits)
        shown = f"<{type(value).__name__} of {value.bit_length()} bits>" if isinstance(value, int) else "<unprintable>"
    return shown if len(shown) <= MAX_SHOWN_CHARS else shown[: MAX_SHOWN_CHARS - 3] + "..."


def describe_value(value: object) -> str:
    """
    Return a value with its type for an error message (a string's quotes already say what it is).

    :param value: a value a user gave.
    """
    return show_value(value) if isinstance(value, str) else f"{type(value).__name__} {show_value(value)}"
