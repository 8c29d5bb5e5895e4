"""OpusHook's uploads at the edges a real server does not easily produce."""

from __future__ import annotations

import pytest

from tests.unit.helpers import BASE, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


def test_upload_streams_through_a_bare_session(opus_http, tmp_path):
    path = tmp_path / "invoice.PDF"
    path.write_bytes(b"%PDF-1.4 hello")
    opus_http.post(
        f"{BASE}/job/file/upload",
        json={"presignedUrl": "https://bucket.test/up/1?X-Sig=abc", "fileUrl": "https://files/1.pdf"},
    )
    opus_http.put("https://bucket.test/up/1", status_code=200)
    assert hook().upload_file(path) == "https://files/1.pdf"
    put = opus_http.request_history[-1]
    assert put.method == "PUT"
    assert "x-service-key" not in {k.lower() for k in put.headers}
    assert put.headers["Content-Type"] == "application/pdf"
    assert hasattr(put.kwargs["data"], "__aiter__"), "the body must be a stream, not bytes read into memory"
    assert put.headers["Content-Length"] == str(len(b"%PDF-1.4 hello"))  # presigned URLs refuse a chunked body
    assert put.session is not opus_http.request_history[0].session  # the bare storage session, not the API's
    assert opus_http.request_history[0].json["fileExtension"] == ".pdf"


def test_upload_put_is_retried_from_the_start_with_a_fresh_url(opus_http, tmp_path, sleeps):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n")
    opus_http.post(
        f"{BASE}/job/file/upload",
        [
            {"json": {"presignedUrl": "https://bucket.test/u1", "fileUrl": "f1"}},
            {"json": {"presignedUrl": "https://bucket.test/u2", "fileUrl": "f2"}},
        ],
    )
    opus_http.put("https://bucket.test/u1", status_code=503)
    opus_http.put("https://bucket.test/u2", status_code=200)
    assert hook().upload_file(str(path), content_type="text/x-custom") == "f2"
    assert opus_http.request_history[-1].headers["Content-Type"] == "text/x-custom"
    assert [(r.method, r.url.path) for r in opus_http.request_history] == [
        ("POST", "/job/file/upload"),
        ("PUT", "/u1"),
        ("POST", "/job/file/upload"),
        ("PUT", "/u2"),
    ]
