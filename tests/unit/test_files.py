"""files.py: supported file types, access scopes, and the checks of local files before an upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_opus.exceptions import OpusInvalidArgumentError
from airflow_provider_opus.files import (
    ACCESS_SCOPES,
    SUPPORTED_FILE_EXTENSIONS,
    check_file_extension,
    check_local_files,
    upload_url_request,
)
from tests.unit.helpers import hook

SUPPORTED = "CSV, DOCX, HTML, JPEG, JPG, JSON, PDF, PNG, TXT, XLS, XLSX, XML"


def test_constants():
    assert (
        frozenset({"jpeg", "png", "jpg", "pdf", "docx", "csv", "xls", "xlsx", "txt", "json", "html", "xml"})
        == SUPPORTED_FILE_EXTENSIONS
    )
    assert ACCESS_SCOPES == ("all", "user", "workspace", "organization")


# --- file extensions --------------------------------------------------------------------------------


def test_check_file_extension_without_restriction():
    assert check_file_extension("report.XLSX", None) is None
    assert check_file_extension(Path("dir.v2/report.json"), None) is None
    assert check_file_extension("setup.exe", None) == (
        f"file type '.exe' is not supported by Opus (supported: {SUPPORTED})"
    )
    assert check_file_extension("README", None) == f"'README' has no file extension (supported: {SUPPORTED})"
    assert check_file_extension("https://h.test/", None) == (
        f"'https://h.test/' has no file extension (supported: {SUPPORTED})"
    )


def test_check_file_extension_reads_the_url_path_not_its_query_string():
    assert check_file_extension("https://h.test/a.pdf?X-Amz-Signature=abc.exe#x.exe", None) is None
    assert check_file_extension("https://h.test/download?name=a.pdf", None) == (
        f"'https://h.test/download?name=a.pdf' has no file extension (supported: {SUPPORTED})"
    )
    assert check_file_extension("https://[broken/a.pdf", None) == "'https://[broken/a.pdf' is not a valid URL"


def test_check_file_extension_with_allowed_types_compares_case_insensitively():
    assert check_file_extension("scan.pdf", frozenset({"PDF"})) is None
    assert check_file_extension("SCAN.PDF", frozenset({".pdf"})) is None
    assert check_file_extension("data.csv", frozenset({"PDF", "PNG"})) == (
        "file type '.csv' is not allowed for this input (allowed: PDF, PNG)"
    )
    assert check_file_extension("setup.exe", frozenset({"PDF", "PNG"})) == (
        "file type '.exe' is not allowed for this input (allowed: PDF, PNG)"
    )
    # A type the schema allows but Opus cannot take is still refused, with Opus's list.
    assert check_file_extension("anim.gif", frozenset({"GIF", "PDF"})) == (
        f"file type '.gif' is not supported by Opus (supported: {SUPPORTED})"
    )


def test_jpg_and_jpeg_are_different_types():
    assert check_file_extension("photo.jpg", frozenset({"JPEG"})) == (
        "file type '.jpg' is not allowed for this input (allowed: JPEG)"
    )


# -- checked by OpusHook before any request ----------------------------------------------------


@pytest.mark.usefixtures("opus_connection")
def test_bad_access_scope_rejected_before_any_request(opus_http):
    with pytest.raises(OpusInvalidArgumentError, match="access_scope must be one of all, user, workspace"):
        hook().get_upload_url("pdf", "everyone")
    assert opus_http.call_count == 0


@pytest.mark.usefixtures("opus_connection")
@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.pdf", None, "does not exist"),
        ("folder.pdf", "dir", "is a directory"),
        ("virus.exe", "file", "'.exe'"),
    ],
)
def test_upload_rejects_bad_files_before_any_request(opus_http, tmp_path, name, make, message):
    path = tmp_path / name
    if make == "dir":
        path.mkdir()
    elif make == "file":
        path.write_bytes(b"MZ")
    with pytest.raises(OpusInvalidArgumentError, match=message):
        hook().upload_file(path)
    assert opus_http.call_count == 0


@pytest.mark.usefixtures("opus_connection")
def test_files_over_the_upload_limit_are_all_named_before_any_request(opus_http, tmp_path, monkeypatch):
    import json

    from tests.unit.helpers import BASE, KEY

    conn = {"conn_type": "opus", "host": BASE, "password": KEY, "extra": {"max_upload_bytes": 10}}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    big, bigger, small = tmp_path / "a.pdf", tmp_path / "b.pdf", tmp_path / "c.pdf"
    big.write_bytes(b"x" * 11)
    bigger.write_bytes(b"x" * 12)
    small.write_bytes(b"x" * 10)
    with pytest.raises(OpusInvalidArgumentError) as raised:
        check_local_files([str(big), str(small), str(bigger)], hook().settings.max_upload_bytes)
    message = str(raised.value)
    assert f"{str(big)!r} (11 bytes), {str(bigger)!r} (12 bytes) are larger than the 10 bytes" in message
    assert "max_upload_bytes" in message and str(small) not in message
    with pytest.raises(OpusInvalidArgumentError, match="larger than the 10 bytes"):
        hook().upload_file(big)
    assert opus_http.call_count == 0


def test_the_upload_request_sends_only_what_is_set():
    assert upload_url_request("PDF", None) == {"fileExtension": ".pdf"}
    assert upload_url_request(".csv", "workspace", "notes.csv", " ws1 ") == {
        "fileExtension": ".csv",
        "accessScope": "workspace",
        "originalName": "notes.csv",
        "workspaceId": "ws1",
    }
    with pytest.raises(OpusInvalidArgumentError, match="needs the workspace that owns the files: give workspace_id"):
        upload_url_request("pdf", "workspace")
