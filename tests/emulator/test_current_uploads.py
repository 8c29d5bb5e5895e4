"""app.py's storage listener in the current generation: a PUT over 10 MiB is refused with 413, streamed."""

from __future__ import annotations

import hashlib
import resource

import pytest
import requests

from airflow_provider_opus.emulator import MAX_UPLOAD_BYTES
from tests.emulator.helpers import TIMEOUT

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def test_the_limit_is_ten_mib():
    assert MAX_UPLOAD_BYTES == 10_485_760


def test_a_file_of_exactly_ten_mib_is_taken(capi, current):
    urls = capi.upload_url().json()
    body = b"x" * MAX_UPLOAD_BYTES
    assert requests.put(urls["presignedUrl"], data=body, timeout=60).status_code == 200
    (upload,) = current.uploads()
    assert (upload["uploaded"], upload["size"], upload["refusedSize"]) == (True, MAX_UPLOAD_BYTES, None)
    assert upload["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("chunked", [False, True])
def test_one_byte_more_is_refused_with_413(capi, current, chunked):
    urls = capi.upload_url().json()
    size = MAX_UPLOAD_BYTES + 1
    # A generator makes requests send it chunked, with no Content-Length to judge by.
    data = (b"x" * part for part in (MIB,) * 10 + (1,)) if chunked else b"x" * size
    response = requests.put(urls["presignedUrl"], data=data, timeout=60)
    assert response.status_code == 413
    assert response.json() == {
        "message": "File too large: 10485761 bytes; an upload may be at most 10485760 bytes (10 MiB)"
    }
    (upload,) = current.uploads()
    assert (upload["uploaded"], upload["size"], upload["refusedSize"]) == (False, None, size)
    assert [entry["status"] for entry in current.requests("storage_put")] == [413]


def test_a_large_refused_upload_is_not_held_in_memory(capi, current):
    presigned_url = capi.upload_url().json()["presignedUrl"]
    chunk = b"\0" * MIB
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    response = requests.put(presigned_url, data=(chunk for _ in range(128)), timeout=60)
    assert response.status_code == 413 and current.uploads()[0]["refusedSize"] == 128 * MIB
    # The server runs in this process: buffering the body would raise the peak by about its size.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 64 * 1024


def test_legacy_has_no_limit_and_an_upload_url_keeps_the_limit_it_was_issued_with(api, emulator):
    legacy_url = api.upload_url().json()["presignedUrl"]
    emulator.configure(api="current")
    try:
        current_url = api.post("/job/file/upload", {"fileExtension": ".pdf"}).json()["presignedUrl"]
        body = b"x" * (MAX_UPLOAD_BYTES + 1)
        assert requests.put(legacy_url, data=body, timeout=TIMEOUT).status_code == 200
        assert requests.put(current_url, data=body, timeout=TIMEOUT).status_code == 413
    finally:
        emulator.configure(api="legacy")
    legacy = [upload for upload in emulator.uploads() if upload["uploaded"]]
    assert len(legacy) == 1 and "maxBytes" not in legacy[0]  # a legacy upload's summary is as it was
