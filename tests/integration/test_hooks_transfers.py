"""OpusHook's uploads against the emulator over real loopback HTTP: retries, expired URLs,
answers of the wrong shape, a storage answer cut at the timeout (downloads: test_downloads.py)."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_opus.exceptions import OpusAuthError, OpusResponseError, OpusStorageError, OpusTransportError
from airflow_provider_opus.hooks.opus import OpusHook
from tests.integration.helpers import DRIPPED_ANSWER, RawServer, fast_hook, http_response

pytestmark = pytest.mark.integration


def test_presigned_put_is_retried_and_carries_no_key(emulator, tmp_path):
    path = tmp_path / "scan.png"
    path.write_bytes(b"\x89PNG" + b"0" * 5000)
    emulator.inject("storage_put", {"status": 503})
    file_url = fast_hook().upload_file(path)
    puts = emulator.requests("storage_put")
    assert [p["status"] for p in puts] == [503, 200]
    assert puts[0]["path"] != puts[1]["path"]  # the retry asked for a fresh URL
    assert not any(p["had_service_key"] for p in puts)
    (upload,) = [upload for upload in emulator.uploads() if upload["uploaded"]]
    assert upload["fileUrl"] == file_url
    assert upload["size"] == path.stat().st_size
    assert upload["content_type"] == "image/png"


# -- uploads: an expired presigned URL ---------------------------------------------------------------


@pytest.fixture
def upload_url_ttl(emulator):
    """Set the emulator's presigned URL lifetime for one test (configuration outlives ``reset``)."""
    yield lambda seconds: emulator.configure(upload_url_ttl=seconds)
    emulator.configure(upload_url_ttl=3600)


def test_expired_presigned_url_is_retried_with_a_fresh_one(emulator, tmp_path, upload_url_ttl):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"%PDF-1.4 expiring")
    upload_url_ttl(1.0)
    # The first URL reaches the hook after its second of life: storage refuses it as expired.
    emulator.inject("get_upload_url", {"delay": 1.5})
    file_url = fast_hook().upload_file(path)
    puts = emulator.requests("storage_put")
    assert [put["status"] for put in puts] == [403, 200]
    assert puts[0]["path"] != puts[1]["path"], "the retry sent the expired URL again"
    assert len(emulator.requests("get_upload_url")) == 2
    (upload,) = [upload for upload in emulator.uploads() if upload["uploaded"]]
    assert upload["fileUrl"] == file_url
    assert upload["size"] == path.stat().st_size


def test_refused_presigned_url_is_a_storage_error_not_a_refused_key(emulator, tmp_path, upload_url_ttl):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"%PDF-1.4 expiring")
    upload_url_ttl(0)  # every URL has expired by the time it is used
    with pytest.raises(OpusStorageError) as info:
        fast_hook(retry_limit=1).upload_file(path)
    message = str(info.value)
    assert not isinstance(info.value, OpusAuthError)
    assert "returned HTTP 403: Upload URL has expired" in message
    assert "storage refused the presigned upload URL" in message and "not the service key" in message
    assert "check the password" not in message
    assert "X-Amz-Signature" not in message  # the signature stays out of messages
    puts = emulator.requests("storage_put")
    assert len(puts) == 2 and puts[0]["path"] != puts[1]["path"]  # each attempt had its own URL
    assert len(emulator.requests("get_upload_url")) == 2


# -- response shapes: each field of the upload URL answer is checked ------------------------------


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"presignedUrl": "STORAGE/upload/x", "fileUrl": None}, "fileUrl is null"),
        ({"presignedUrl": "STORAGE/upload/x", "fileUrl": {"a": 1}}, "fileUrl is dict {'a': 1}"),
        ({"presignedUrl": "STORAGE/upload/x", "fileUrl": 5}, "fileUrl is int 5"),
        ({"presignedUrl": "STORAGE/upload/x", "fileUrl": " "}, "fileUrl is ' '"),
        ({"presignedUrl": None, "fileUrl": "https://files/x.pdf"}, "presignedUrl is null"),
        ({"presignedUrl": "/upload/x?X-Amz-Signature=s", "fileUrl": "https://files/x.pdf"}, "presignedUrl is not"),
    ],
)
def test_upload_url_answer_of_the_wrong_shape_names_the_field(emulator, tmp_path, answer, field):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF")
    answer = {
        key: value.replace("STORAGE", emulator.storage_url) if isinstance(value, str) else value
        for key, value in answer.items()
    }
    emulator.inject("get_upload_url", {"status": 200, "json": answer, "times": 2})
    with pytest.raises(OpusResponseError, match="POST /job/file/upload") as info:
        fast_hook().upload_file(path)
    assert field in str(info.value)
    assert "X-Amz-Signature" not in str(info.value)
    assert emulator.requests("storage_put") == []
    with pytest.raises(OpusResponseError, match=field.split(" ")[0]):
        fast_hook().get_upload_url(".pdf")


# -- the connection's timeout bounds an upload too ----------------------------------------


def test_a_dripping_storage_answer_is_cut_at_the_timeout(monkeypatch, tmp_path):
    def answer(method: str, path: str, send) -> None:
        if method == "POST":  # the upload URL, pointing at the same server
            urls = {"presignedUrl": f"{server.url}/storage/f.pdf?sig=s3cr3t", "fileUrl": "opus://files/f.pdf"}
            send(http_response(json.dumps(urls).encode()))
        else:
            send(DRIPPED_ANSWER, interval=0.5)  # about 100 s, no read waiting longer than 0.5 s

    path = tmp_path / "f.pdf"
    path.write_bytes(b"%PDF-1.4\n" + b"x" * 1000)
    with RawServer(answer) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", server.connection_json(timeout=2))
        started = time.monotonic()
        with pytest.raises(
            OpusTransportError, match=r"PUT /storage/f.pdf failed \(the response took longer than 2 s\)"
        ):
            OpusHook(retry_limit=0).upload_file(path)
        elapsed = time.monotonic() - started
    assert elapsed < 50  # the whole drip lasts about 100 s: see the API call's twin in test_hooks_opus.py
    assert [method for method, _ in server.requests] == ["POST", "PUT"]
