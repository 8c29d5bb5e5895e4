"""files.py: supported file types, access scopes, and the checks of local files before an upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_opus.exceptions import OpusInvalidArgumentError
from airflow_provider_opus.files import ACCESS_SCOPES, SUPPORTED_FILE_EXTENSIONS, check_file_extension
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
def test_bad_access_scope_rejected_before_any_request(requests_mock):
    with pytest.raises(OpusInvalidArgumentError, match="access_scope must be one of all, user, workspace"):
        hook().get_upload_url("pdf", "everyone")
    assert requests_mock.call_count == 0


@pytest.mark.usefixtures("opus_connection")
@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.pdf", None, "does not exist"),
        ("folder.pdf", "dir", "is a directory"),
        ("virus.exe", "file", "'.exe'"),
    ],
)
def test_upload_rejects_bad_files_before_any_request(requests_mock, tmp_path, name, make, message):
    path = tmp_path / name
    if make == "dir":
        path.mkdir()
    elif make == "file":
        path.write_bytes(b"MZ")
    with pytest.raises(OpusInvalidArgumentError, match=message):
        hook().upload_file(path)
    assert requests_mock.call_count == 0
