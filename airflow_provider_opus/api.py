"""The Opus API as data: its endpoints, and how a response is read.

Both hooks (``requests`` and ``aiohttp``) are built on this module, so an endpoint's
path, its retry safety and the shape its response must have each live here and nowhere
else. What a status means is :mod:`airflow_provider_opus.status`'s; the answers that differ
between the two API generations are read by :mod:`airflow_provider_opus.workflows` (workflow
details), :mod:`airflow_provider_opus.outputs` (results) and :mod:`airflow_provider_opus.audit`.
"""

from __future__ import annotations

import email.utils
import enum
import json
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusBadRequestError,
    OpusInvalidArgumentError,
    OpusNotFoundError,
    OpusRateLimitError,
    OpusRequestError,
    OpusResponseError,
    OpusServerError,
    OpusStorageError,
    describe_value,
    show_value,
)
from airflow_provider_opus.outputs import RESULTS_FIELDS, job_outputs_from

DEFAULT_BASE_URL = "https://operator.opus.com"
DEFAULT_APP_URL = "https://app.opus.com"
SERVICE_KEY_HEADER = "x-service-key"


class RetrySafety(enum.Enum):
    """When a failed call may be sent again."""

    #: Reads and upload-URL requests: sending them twice changes nothing.
    IDEMPOTENT = "idempotent"
    #: Calls that create or start billed work: only when the server provably did not act.
    ONLY_IF_NOT_ACTED = "only_if_not_acted"


@dataclass(frozen=True)
class Endpoint:
    """
    One call of the Opus API.

    :param name: the name used in logs, the emulator's fault injection and benchmarks.
    :param method: HTTP method.
    :param path_template: path with ``{placeholders}`` for URL-quoted parameters.
    :param retry_safety: when a failed call may be retried.
    :param required_keys: keys a successful JSON object response must hold.
    """

    name: str
    method: str
    path_template: str
    retry_safety: RetrySafety
    required_keys: tuple[str, ...] = ()

    def path(self, **params: str) -> str:
        """
        Return the request path with every parameter checked (:func:`checked_path_parameter`) and URL-quoted.

        :param params: values for the template's placeholders.
        :raises OpusInvalidArgumentError: a parameter that is not one path segment of text.
        """
        return self.path_template.format(
            **{key: quote(checked_path_parameter(key, value), safe="") for key, value in params.items()}
        )


GET_WORKFLOW = Endpoint("get_workflow", "GET", "/workflow/{workflow_id}", RetrySafety.IDEMPOTENT)
INITIATE_JOB = Endpoint("initiate_job", "POST", "/job/initiate", RetrySafety.ONLY_IF_NOT_ACTED, ("jobExecutionId",))
GET_UPLOAD_URL = Endpoint(
    "get_upload_url", "POST", "/job/file/upload", RetrySafety.IDEMPOTENT, ("presignedUrl", "fileUrl")
)
EXECUTE_JOB = Endpoint("execute_job", "POST", "/job/execute", RetrySafety.ONLY_IF_NOT_ACTED)
GET_JOB_STATUS = Endpoint(
    "get_job_status", "GET", "/job/{job_execution_id}/status", RetrySafety.IDEMPOTENT, ("status",)
)
GET_JOB_RESULTS = Endpoint("get_job_results", "GET", "/job/{job_execution_id}/results", RetrySafety.IDEMPOTENT)
GET_JOB_AUDIT_LOG = Endpoint("get_job_audit_log", "GET", "/job/{job_execution_id}/audit", RetrySafety.IDEMPOTENT)
#: The presigned PUT to storage: not an Opus API call, but retried by the same policy.
STORAGE_PUT = Endpoint("storage_put", "PUT", "{presigned_url}", RetrySafety.IDEMPOTENT)
#: The download of an output file (a URL of the job's results): not an API call, retried by the same policy.
DOWNLOAD_FILE = Endpoint("download_output_file", "GET", "{url}", RetrySafety.IDEMPOTENT)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """
    Return the seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date).

    :param value: the header's value, or None.
    :param now: the current time as a Unix timestamp (for tests).
    :return: seconds (never negative), or None when absent or unreadable.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _server_message(body: bytes) -> str | None:
    """Return the server's own explanation from an error body, shortened."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:300] or None
    if isinstance(parsed, Mapping):
        for key in ("message", "detail", "error"):
            if parsed.get(key):
                found = parsed[key]
                # Today's Opus answers a validation failure with a list of messages.
                text = "; ".join(map(str, found)) if isinstance(found, list) else str(found)
                return text[:300]
    return text[:300] or None


def error_for_status(
    endpoint: Endpoint, path: str, status_code: int, body: bytes, retry_after_header: str | None
) -> OpusRequestError:
    """
    Return the exception for a non-2xx response.

    :param endpoint: the endpoint called.
    :param path: the path called (no host, no key).
    :param status_code: the HTTP status.
    :param body: the raw response body.
    :param retry_after_header: the ``Retry-After`` header, if any.
    """
    message = _server_message(body)
    kwargs: dict[str, Any] = {"status_code": status_code, "server_message": message}
    method = endpoint.method
    if status_code in (401, 403):
        return OpusAuthError(
            method, path, "the service key was refused: check the password of the Opus connection", **kwargs
        )
    if status_code == 404:
        return OpusNotFoundError(method, path, "not found: check the workflow or job id", **kwargs)
    if status_code == 429:
        retry_after = parse_retry_after(retry_after_header)
        return OpusRateLimitError(method, path, "rate limited by Opus", retry_after=retry_after, **kwargs)
    if status_code >= 500:
        retry_after = parse_retry_after(retry_after_header)
        return OpusServerError(method, path, "Opus server error", retry_after=retry_after, **kwargs)
    if 400 <= status_code < 500:
        return OpusBadRequestError(method, path, "the request was rejected", **kwargs)
    return OpusResponseError(method, path, "unexpected HTTP status", **kwargs)


def storage_error_for_status(
    path: str, status_code: int, body: bytes, retry_after_header: str | None
) -> OpusRequestError:
    """
    Return the exception for a non-2xx answer of the storage host to a presigned PUT.

    Storage never sees the service key, so no answer of it can mean a refused key: a 401 or 403
    means the presigned URL expired or does not fit the upload. 429 and 5xx are read as for the API.

    :param path: the storage path called (no query: it holds the signature).
    :param status_code: the HTTP status.
    :param body: the raw response body.
    :param retry_after_header: the ``Retry-After`` header, if any.
    """
    if status_code == 429 or status_code >= 500:
        return error_for_status(STORAGE_PUT, path, status_code, body, retry_after_header)
    if status_code in (401, 403):
        reason = (
            "storage refused the presigned upload URL: it expired or does not fit this upload; not the "
            "service key, which uploads never carry; each retry asks Opus for a fresh URL"
        )
    else:
        reason = "the storage host rejected the upload"
    return OpusStorageError(
        STORAGE_PUT.method, path, reason, status_code=status_code, server_message=_server_message(body)
    )


def parse_success_body(endpoint: Endpoint, path: str, status_code: int, body: bytes) -> Any:
    """
    Return the JSON of a 2xx response, checked against the endpoint's documented shape.

    :param endpoint: the endpoint called.
    :param path: the path called.
    :param status_code: the HTTP status.
    :param body: the raw body.
    :raises OpusResponseError: the body is not JSON, not an object, or lacks a key.
    """
    try:
        parsed = json.loads(body)
    except ValueError:
        snippet = body[:80].decode("utf-8", errors="replace")
        raise OpusResponseError(
            endpoint.method,
            path,
            f"the response of {endpoint.name} is not JSON (starts with {snippet!r})",
            status_code=status_code,
        ) from None
    if not isinstance(parsed, dict):
        raise OpusResponseError(
            endpoint.method,
            path,
            f"the response of {endpoint.name} is a JSON {type(parsed).__name__}, expected an object",
            status_code=status_code,
        )
    missing = [key for key in endpoint.required_keys if key not in parsed]
    if missing:
        raise OpusResponseError(
            endpoint.method,
            path,
            f"the response of {endpoint.name} lacks {', '.join(missing)} (keys: {', '.join(sorted(parsed)) or 'none'})",
            status_code=status_code,
        )
    return parsed


def read_response(endpoint: Endpoint, path: str, status_code: int, body: bytes, retry_after_header: str | None) -> Any:
    """
    Return the parsed JSON of a 2xx response; raise the matching error for any other.

    :param endpoint: the endpoint called.
    :param path: the path called.
    :param status_code: the HTTP status.
    :param body: the raw body.
    :param retry_after_header: the ``Retry-After`` header, if any.
    """
    if 200 <= status_code < 300:
        return parse_success_body(endpoint, path, status_code, body)
    raise error_for_status(endpoint, path, status_code, body, retry_after_header)


# -- fields read from a response: each checked here, for both hooks ------------------------------


def checked_path_parameter(name: str, value: object) -> str:
    """
    Return a value that goes into a request path, after checking it can only name what it means to.

    A value is one path segment of text: a non-empty string with no ``/``, no ``..`` and no control
    character. Quoting alone is not enough: ``..`` stays ``..`` when quoted, and the server (or a proxy)
    resolves it, so a job id ``..`` would turn ``GET /job/../status`` into ``GET /status``.

    :param name: the parameter's name, for the message.
    :param value: the value a caller gave.
    :raises OpusInvalidArgumentError: anything else, naming the parameter.
    """
    if not isinstance(value, str) or not value.strip():
        raise OpusInvalidArgumentError(f"{name} must be a non-empty string, got {describe_value(value)}")
    if "/" in value or ".." in value or value == ".":
        raise OpusInvalidArgumentError(
            f"{name} {show_value(value)} cannot be an id: it holds '/' or '..', which would make the request "
            "path name another endpoint; give the id as Opus showed it"
        )
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise OpusInvalidArgumentError(
            f"{name} {show_value(value)} holds a control character: give the id as Opus showed it"
        )
    return value


def checked_job_id(job_execution_id: object) -> dict[str, str]:
    """
    Return the path parameters of a job endpoint, after checking the id a caller gave.

    :param job_execution_id: the job's id.
    :raises OpusInvalidArgumentError: for an id that is not one path segment of text (:func:`checked_path_parameter`).
    """
    return {"job_execution_id": checked_path_parameter("job_execution_id", job_execution_id)}


def status_from(body: Mapping[str, Any], path: str) -> str:
    """
    Return the ``status`` of a status response.

    :param body: the parsed response.
    :param path: the path called, for the error.
    :raises OpusResponseError: the status is not a string, or empty: no status to wait on.
    """
    status = body["status"]
    if not isinstance(status, str):
        raise OpusResponseError("GET", path, f"status is {type(status).__name__}, expected a string")
    if not status.strip():
        # An empty status would be an unknown one, and keep a wait going until its deadline.
        raise OpusResponseError("GET", path, f"status is {status!r}, expected a job status")
    return status


def job_execution_id_from(body: Mapping[str, Any], path: str) -> str:
    """
    Return the ``jobExecutionId`` of an initiate response as a string.

    :param body: the parsed response.
    :param path: the path called, for the error.
    :raises OpusResponseError: the id is not a non-empty string or an integer.
    """
    job_execution_id = body["jobExecutionId"]
    # bool is an int in Python, but `true` is no job id.
    if isinstance(job_execution_id, int) and not isinstance(job_execution_id, bool):
        return str(job_execution_id)
    if not isinstance(job_execution_id, str) or not job_execution_id.strip():
        raise OpusResponseError(
            "POST", path, f"jobExecutionId is {_shown(job_execution_id)}, expected a non-empty string"
        )
    return job_execution_id


def upload_urls_from(body: Mapping[str, Any], path: str) -> tuple[str, str]:
    """
    Return the ``presignedUrl`` and ``fileUrl`` of an upload-URL response.

    :param body: the parsed response.
    :param path: the path called, for the error.
    :raises OpusResponseError: either is not a non-empty string, or the presigned URL is not http(s).
    """
    urls = []
    for key in ("presignedUrl", "fileUrl"):
        value = body[key]
        if not isinstance(value, str) or not value.strip():
            raise OpusResponseError("POST", path, f"{key} is {_shown(value)}, expected a non-empty URL string")
        urls.append(value)
    presigned_url, file_url = urls
    parts = urlsplit(presigned_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Shown without its query: that holds the signature.
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else show_value(parts.path)
        raise OpusResponseError("POST", path, f"presignedUrl is not an http(s) URL ({shown})")
    return presigned_url, file_url


def job_results_from(body: dict[str, Any], path: str) -> dict[str, Any]:
    """
    Return a results response after checking ``status`` and, when there are results, their shape.

    The results of either shape are read by :mod:`airflow_provider_opus.outputs`, whose checks are
    these; a job not completed has none, which is not an error here.

    :param body: the parsed response.
    :param path: the path called, for the error.
    :raises OpusResponseError: ``status`` is not a string; the results object or a file field has the wrong type.
    """
    if body.get("status") is not None:
        status_from(body, path)
    if any(body.get(name) is not None for name in RESULTS_FIELDS):
        job_outputs_from(body, path)
    return body


def _shown(value: object) -> str:
    """Show a value read from a JSON response, with its type (``null`` for None, as the response had it)."""
    return "null" if value is None else describe_value(value)
