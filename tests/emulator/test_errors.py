"""errors.py: the errors of the emulator's state, each answered as its HTTP status with ``{"message": ...}``."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opus.emulator.errors import BadRequest, Conflict, EmulatorError, Forbidden, NotFound
from tests.emulator.helpers import REQUIRED_INPUTS, TIMEOUT

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("error", "status", "python_kind"),
    [
        (EmulatorError, 500, Exception),
        (BadRequest, 400, ValueError),
        (Forbidden, 403, EmulatorError),
        (NotFound, 404, LookupError),
        (Conflict, 409, EmulatorError),
    ],
)
def test_each_error_carries_its_status_and_message(error, status, python_kind):
    exc = error("what went wrong")
    assert isinstance(exc, EmulatorError) and isinstance(exc, python_kind)
    assert exc.status_code == status
    assert exc.message == str(exc) == "what went wrong"


def test_the_python_helpers_raise_them_as_plain_python_errors(emulator):
    # A test script driving the emulator catches ValueError and LookupError, not the emulator's own classes.
    with pytest.raises(ValueError, match=r"^Unknown endpoint 'nope'; expected one of: get_workflow, "):
        emulator.inject("nope", {"status": 500})
    with pytest.raises(LookupError, match=r"^Job missing not found$"):
        emulator.set_job_status("missing", "FAILED")


def test_over_http_each_is_its_status_and_a_message_body(api, emulator):
    bad_request = api.upload_url(".exe")
    assert bad_request.status_code == 400
    assert bad_request.json()["message"].startswith("Unsupported fileExtension '.exe'; supported: ")
    forbidden = requests.put(f"{emulator.storage_url}/upload/nope?X-Amz-Signature=abc", data=b"x", timeout=TIMEOUT)
    assert (forbidden.status_code, forbidden.json()) == (403, {"message": "Invalid or unknown upload URL"})
    not_found = api.get("/job/missing/status")
    assert (not_found.status_code, not_found.json()) == (404, {"message": "Job missing not found"})
    job_id = api.run(REQUIRED_INPUTS)
    conflict = api.execute(job_id, REQUIRED_INPUTS)
    assert (conflict.status_code, conflict.json()) == (409, {"message": f"Job {job_id} has already been executed"})
