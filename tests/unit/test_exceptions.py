"""exceptions.py: which errors skip Airflow retries, and how an error travels in a trigger event."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusBadRequestError,
    OpusConnectionConfigError,
    OpusError,
    OpusInvalidArgumentError,
    OpusNotFoundError,
    OpusResponseError,
    OpusServerError,
    OpusStorageError,
    OpusTransportError,
    error_event_fields,
    error_from_event,
    redact,
)

FINAL = [
    OpusAuthError("GET", "/job/j/status", "the service key was refused", status_code=401, server_message="no"),
    OpusNotFoundError("GET", "/job/j/status", "not found", status_code=404),
    OpusBadRequestError("GET", "/job/j/status", "rejected", status_code=400, server_message="bad"),
    OpusConnectionConfigError("Opus connection 'opus_default' has no service key"),
    OpusInvalidArgumentError("job_execution_id must be a non-empty string"),
]


@pytest.mark.parametrize("error", FINAL, ids=lambda error: type(error).__name__)
def test_a_final_error_comes_back_from_the_event_as_itself(error):
    event = {"status": "error", "message": str(error), **error_event_fields(error)}
    json.dumps(event)  # a trigger event must serialise
    again = error_from_event(event)
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert isinstance(again, AirflowFailException)


@pytest.mark.parametrize(
    "error",
    [
        OpusServerError("GET", "/p", "Opus server error", status_code=500),
        OpusResponseError("GET", "/p", "not JSON", status_code=200),
        OpusTransportError("GET", "/p", "read timeout", request_sent=True),
        OpusStorageError("PUT", "/u", "refused", status_code=403),
        OpusError("anything else"),
        RuntimeError("a bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_other_errors_are_left_to_airflow_retries(error):
    assert not isinstance(error, AirflowFailException)
    assert error_from_event({"status": "error", "message": str(error), **error_event_fields(error)}) is None


def test_an_event_without_an_error_type_is_no_final_error():
    assert error_from_event({"status": "error", "message": "HTTP 401"}) is None


def test_every_message_is_cleaned_of_the_key_credentials_and_query_strings():
    # A 401 body echoing the key, a presigned URL's signature, a proxy's token, a host's password each
    # reached an exception, a lineage FAIL event or dag.test() output (#20 item 11).
    from airflow_provider_opus.exceptions import OpusAuthError, OpusInvalidArgumentError, redact, register_secret

    register_secret("exceptions-test-key-0123456789")
    echoed = OpusAuthError("GET", "/job/j/status", "refused", server_message="bad key exceptions-test-key-0123456789")
    assert "exceptions-test-key" not in str(echoed) and "exceptions-test-key" not in (echoed.server_message or "")
    signed = OpusInvalidArgumentError("url 'https://b.s3.amazonaws.com/f.pdf?X-Amz-Signature=abc123' is wrong")
    assert "abc123" not in str(signed) and "https://b.s3.amazonaws.com/f.pdf?***" in str(signed)
    assert redact("proxy http://u:pw@proxy:3128/?token=t1 and files u2:pw2@files.opus.com") == (
        "proxy http://***@proxy:3128/?*** and files ***@files.opus.com"
    )
    assert redact("ref_user_id someone@example.com") == "ref_user_id someone@example.com"  # no password: kept


@pytest.mark.parametrize(
    "text",
    [
        "PUT /bucket/o.pdf?X-Amz-Signature=SIGSECRET&X-Amz-Credential=CREDSECRET failed",
        "<SignatureProvided>SIGSECRET</SignatureProvided><Url>/b/o.pdf?X-Amz-Signature=SIGSECRET</Url>",
        "X-Goog-Signature=SIGSECRET; Signature=SIGSECRET",
    ],
)
def test_signing_parameters_outside_a_whole_url_are_redacted(text):
    # A storage host's error body or a path with its query carries the presigned URL's signature.
    cleaned = redact(text)
    assert "SIGSECRET" not in cleaned and "CREDSECRET" not in cleaned
    assert "***" in cleaned
