"""api.py: endpoint paths, job statuses, and how a response is read (errors, malformed bodies, Retry-After)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_opus.api import (
    EXECUTE_JOB,
    GET_JOB_STATUS,
    GET_WORKFLOW,
    error_for_status,
    job_execution_id_from,
    job_results_from,
    parse_retry_after,
    storage_error_for_status,
    upload_urls_from,
)
from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusBadRequestError,
    OpusInvalidArgumentError,
    OpusNotFoundError,
    OpusRateLimitError,
    OpusResponseError,
    OpusServerError,
    OpusStorageError,
)
from tests.unit.helpers import BASE, KEY, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


def test_job_id_is_quoted_into_the_path(opus_http):
    opus_http.get(f"{BASE}/job/a%20b%3Fc%25/status", json={"status": "COMPLETED"})
    assert hook().get_job_status("a b?c%") == "COMPLETED"


BAD_IDS = [
    ("..", "holds '/' or '..'"),
    (".", "holds '/' or '..'"),
    ("../../workflow/x", "holds '/' or '..'"),
    ("a/b", "holds '/' or '..'"),
    ("job\r\nX-Injected: 1", "holds a control character"),
    ("", "must be a non-empty string, got ''"),
    (" ", "must be a non-empty string, got ' '"),
    (None, "must be a non-empty string, got NoneType None"),
    (42, "must be a non-empty string, got int 42"),
]


@pytest.mark.parametrize(("job_id", "message"), BAD_IDS)
def test_a_job_id_that_is_not_one_path_segment_is_refused_by_both_hooks_before_any_call(opus_http, job_id, message):
    # A job id ".." reached Opus as GET /status: quoting leaves ".." as it is, and the path was resolved.
    from airflow_provider_opus.hooks.opus import OpusAsyncHook

    for call in (hook().get_job_status, hook().get_job_results, hook().get_job_audit_log):
        with pytest.raises(OpusInvalidArgumentError, match="job_execution_id") as info:
            call(job_id)
        assert message in str(info.value)
    with pytest.raises(OpusInvalidArgumentError, match="job_execution_id") as info:
        hook().execute_job(job_id, {})
    assert message in str(info.value)

    async def read_async() -> None:
        async with OpusAsyncHook() as async_hook:
            for call in (async_hook.get_job_status, async_hook.get_job_results, async_hook.get_job_audit_log):
                with pytest.raises(OpusInvalidArgumentError, match=f"job_execution_id.*{re.escape(message)}"):
                    await call(job_id)

    asyncio.run(read_async())
    assert opus_http.request_history == []


@pytest.mark.parametrize(("workflow_id", "message"), [("..", "holds '/' or '..'"), ("a/../b", "holds '/' or '..'")])
def test_a_workflow_id_that_is_not_one_path_segment_is_refused(opus_http, workflow_id, message):
    with pytest.raises(OpusInvalidArgumentError, match=f"workflow_id '{re.escape(workflow_id)}' cannot be an id"):
        hook().get_workflow(workflow_id)
    assert opus_http.request_history == []


def test_every_path_parameter_is_checked():
    assert GET_JOB_STATUS.path(job_execution_id="J 1") == "/job/J%201/status"
    with pytest.raises(OpusInvalidArgumentError, match=r"job_execution_id must be a non-empty string, got int 7"):
        GET_JOB_STATUS.path(job_execution_id=7)  # type: ignore[arg-type]
    with pytest.raises(OpusInvalidArgumentError, match=r"workflow_id '\.\.' cannot be an id"):
        GET_WORKFLOW.path(workflow_id="..")


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "fails_task"),
    [
        (401, OpusAuthError, True),
        (403, OpusAuthError, True),
        (404, OpusNotFoundError, True),
        (400, OpusBadRequestError, True),
        (409, OpusBadRequestError, True),
    ],
)
def test_http_errors_map_to_own_exceptions(opus_http, status, error, fails_task):
    opus_http.get(f"{BASE}/job/j1/results", status_code=status, json={"message": "server says no"})
    with pytest.raises(error) as info:
        hook().get_job_results("j1")
    text = str(info.value)
    assert f"GET /job/j1/results returned HTTP {status}: server says no" in text
    assert KEY not in text
    assert isinstance(info.value, AirflowFailException) is fails_task
    assert opus_http.call_count == 1  # client errors are never retried


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>gateway</html>", "the response of get_job_status is not JSON"),
        (json.dumps(["IN PROGRESS"]), "is a JSON list, expected an object"),
        (json.dumps({"state": "IN PROGRESS"}), "lacks status"),
        (json.dumps({"status": 3}), "status is int, expected a string"),
        (json.dumps({"status": ""}), "status is '', expected a job status"),
        (json.dumps({"status": " \t"}), r"status is ' \\t', expected a job status"),
    ],
)
def test_malformed_2xx_names_the_endpoint(opus_http, body, message):
    opus_http.get(f"{BASE}/job/j1/status", body=body)
    with pytest.raises(OpusResponseError, match=message):
        hook().get_job_status("j1")


def test_429_honours_retry_after_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == 42.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


# -- the storage host's answers to a presigned PUT ---------------------------------------------------

S3_EXPIRED = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (403, OpusStorageError),
        (401, OpusStorageError),
        (400, OpusStorageError),
        (404, OpusStorageError),
        (413, OpusStorageError),
        (429, OpusRateLimitError),
        (503, OpusServerError),
    ],
)
def test_storage_answers_never_blame_the_key(status, error):
    exc = storage_error_for_status("/upload/t1", status, S3_EXPIRED, None)
    assert type(exc) is error
    assert not isinstance(exc, (OpusAuthError, OpusNotFoundError))
    text = str(exc)
    assert text.startswith(f"Opus PUT /upload/t1 returned HTTP {status}")
    assert "check the password" not in text and "workflow or job id" not in text


def test_refused_presigned_url_says_so_and_keeps_the_storage_message():
    exc = storage_error_for_status("/upload/t1", 403, S3_EXPIRED, None)
    assert "Request has expired" in str(exc)
    assert "storage refused the presigned upload URL: it expired or does not fit this upload" in str(exc)
    assert "not the service key" in str(exc)
    assert not isinstance(exc, AirflowFailException)  # a task retry gets fresh URLs


# -- fields read from responses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"presignedUrl": "https://s3/u?sig=1", "fileUrl": None}, "fileUrl is null, expected a non-empty URL string"),
        ({"presignedUrl": "https://s3/u?sig=1", "fileUrl": {"a": 1}}, "fileUrl is dict {'a': 1}"),
        ({"presignedUrl": "https://s3/u?sig=1", "fileUrl": 5}, "fileUrl is int 5"),
        ({"presignedUrl": 7, "fileUrl": "https://f/1.pdf"}, "presignedUrl is int 7"),
        (
            {"presignedUrl": "s3://bucket/u?sig=secret", "fileUrl": "f"},
            r"presignedUrl is not an http\(s\) URL \(s3://bucket/u\)",
        ),
    ],
)
def test_upload_urls_of_the_wrong_type_name_the_field(body, message):
    with pytest.raises(OpusResponseError, match=message) as info:
        upload_urls_from(body, "/job/file/upload")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [(True, "jobExecutionId is bool True"), ("", "jobExecutionId is ''"), (1.5, "jobExecutionId is float 1.5")],
)
def test_job_execution_id_must_be_a_string_or_an_integer(value, message):
    with pytest.raises(OpusResponseError, match=message):
        job_execution_id_from({"jobExecutionId": value}, "/job/initiate")
    assert job_execution_id_from({"jobExecutionId": 2514}, "/job/initiate") == "2514"
    assert job_execution_id_from({"jobExecutionId": "j1"}, "/job/initiate") == "j1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"results": []}, "results is list"),
        ({"results": "x"}, "results is 'x', expected an object"),
        ({"jobResultsPayloadSchema": [1]}, "jobResultsPayloadSchema is list"),
        ({"status": 5, "results": {}}, "status is int, expected a string"),
    ],
)
def test_results_of_the_wrong_shape_name_the_field(body, message):
    with pytest.raises(OpusResponseError, match=message):
        job_results_from(body, "/job/j/results")


def test_a_list_of_server_messages_is_joined():
    # Today's Opus answers a validation failure with "message" as a list.
    body = b'{"message": ["callbackUrl must be a URL address", "x should not exist"]}'
    error = error_for_status(EXECUTE_JOB, "/job/execute", 400, body, None)
    assert error.server_message == "callbackUrl must be a URL address; x should not exist"
