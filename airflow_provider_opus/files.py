"""The file rules of Opus, in one table: the file types it accepts, their content types, and who may read an upload.

Used by the payload checks (the types a ``file`` input may name), by the hook's upload (the
Content-Type of the presigned PUT) and by the operators (local files checked before anything
is uploaded).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from airflow_provider_opus.exceptions import OpusInvalidArgumentError, show_value

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

#: Every file type Opus accepts (lowercase extension, no dot), and the Content-Type its upload is sent with.
CONTENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "csv": "text/csv",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "txt": "text/plain",
    "json": "application/json",
    "html": "text/html",
    "xml": "application/xml",
}

SUPPORTED_FILE_EXTENSIONS: frozenset[str] = frozenset(CONTENT_TYPES)
"""File extensions Opus accepts for uploads: lowercase, without the dot."""

ACCESS_SCOPES: tuple[str, ...] = ("all", "user", "workspace", "organization")
"""The values ``POST /job/file/upload`` accepts as ``accessScope``."""


def check_access_scope(access_scope: str | None, workspace_id: str | None = None) -> None:
    """
    Check an upload's access scope and its owner.

    :param access_scope: who may read an uploaded file; None leaves the file unlisted (today's Opus).
    :param workspace_id: the workspace that owns the file: required for the ``workspace`` scope.
    :raises OpusInvalidArgumentError: a scope not in :data:`ACCESS_SCOPES`, or the workspace scope without
        a workspace.
    """
    if access_scope is not None and access_scope not in ACCESS_SCOPES:
        raise OpusInvalidArgumentError(
            f"access_scope must be one of {', '.join(ACCESS_SCOPES)} or None, got {access_scope!r}"
        )
    if workspace_id is not None and (not isinstance(workspace_id, str) or not workspace_id.strip()):
        raise OpusInvalidArgumentError(f"workspace_id must be a non-empty string, got {workspace_id!r}")
    if access_scope == "workspace" and workspace_id is None:
        raise OpusInvalidArgumentError(
            "access_scope 'workspace' needs the workspace that owns the files: give workspace_id"
        )


def upload_url_request(
    file_extension: str, access_scope: str | None, original_name: str | None = None, workspace_id: str | None = None
) -> dict[str, str]:
    """
    Return the body of ``POST /job/file/upload``: only the fields that are set, so either generation takes it.

    :param file_extension: the file's extension, with or without the dot.
    :param access_scope: who may read the file, or None for an unlisted file.
    :param original_name: the file's name, shown in the Opus file library.
    :param workspace_id: the workspace that owns the file.
    :raises OpusInvalidArgumentError: see :func:`check_access_scope`.
    """
    check_access_scope(access_scope, workspace_id)
    body = {"fileExtension": "." + normalize_extension(file_extension)}
    if access_scope is not None:
        body["accessScope"] = access_scope
    if original_name:
        body["originalName"] = original_name
    if workspace_id is not None:
        body["workspaceId"] = workspace_id.strip()
    return body


def is_url(path_or_url: str) -> bool:
    """
    Tell whether a file value is an http(s) URL (a fileUrl) rather than a local path.

    :param path_or_url: a file input's value.
    """
    return path_or_url.lower().startswith(("http://", "https://"))


def normalize_extension(extension: object) -> str:
    """
    Return an extension as the table keys it: lowercase, without the dot.

    :param extension: an extension in any case, with or without the dot.
    """
    return str(extension).strip().lstrip(".").lower()


def extension_list(extensions: Iterable[str]) -> str:
    """
    Return extensions as error messages list them (``CSV, PDF``).

    :param extensions: normalised extensions.
    """
    return ", ".join(sorted(extension.upper() for extension in extensions))


def content_type_for(extension: str) -> str:
    """
    Return the Content-Type an upload of this file type is sent with.

    :param extension: the file's extension, with or without the dot.
    """
    return CONTENT_TYPES.get(normalize_extension(extension), "application/octet-stream")


def check_file_extension(path_or_url: str | os.PathLike[str], allowed: frozenset[str] | None) -> str | None:
    """
    Check that Opus, and the input if it restricts them, accept a file's type.

    :param path_or_url: a local path, or an http(s) URL whose path (not its query string) is checked.
    :param allowed: the extensions the input accepts, in any case, with or without the dot; None
        for any Opus supports. JPG and JPEG are different extensions here, as in the schema.
    :return: the problem, worded to follow an input's name, or None if the type is accepted.
    """
    text = os.fspath(path_or_url)
    path = text
    if is_url(text):
        try:
            path = urlsplit(text).path
        except ValueError:  # such as an unclosed "[" in the host
            return f"{show_value(text)} is not a valid URL"
    extension = os.path.splitext(path)[1]
    normalized = normalize_extension(extension)
    file_type = f"file type {show_value(extension)}"
    supported = extension_list(SUPPORTED_FILE_EXTENSIONS)
    if not normalized:
        return f"{show_value(text)} has no file extension (supported: {supported})"
    # The input's own list first: it is the shorter, more useful one to show.
    if allowed:
        accepted = frozenset(normalize_extension(a) for a in allowed)
        if normalized not in accepted:
            return f"{file_type} is not allowed for this input (allowed: {extension_list(accepted)})"
    if normalized not in SUPPORTED_FILE_EXTENSIONS:
        return f"{file_type} is not supported by Opus (supported: {supported})"
    return None


def check_local_files(paths: Sequence[str], max_bytes: int | None = None) -> None:
    """
    Check that every path is a readable, non-empty file of a type Opus accepts, before anything is uploaded.

    :param paths: local file paths.
    :param max_bytes: the largest file allowed (the connection's ``max_upload_bytes``), or None for no limit.
    :raises OpusInvalidArgumentError: listing every bad path and what to do about it.
    """
    problems = []
    too_large = []
    for path in paths:
        if not os.path.exists(path):
            problems.append(f"{path!r} does not exist")
        elif os.path.isdir(path):
            problems.append(f"{path!r} is a directory, not a file")
        elif not os.access(path, os.R_OK):
            problems.append(f"{path!r} is not readable by this process")
        elif (size := os.path.getsize(path)) == 0:
            problems.append(f"{path!r} is empty")
        elif problem := check_file_extension(path, None):
            problems.append(f"{path!r}: {problem}")
        elif max_bytes is not None and size > max_bytes:
            too_large.append(f"{path!r} ({size} bytes)")
    if too_large:
        problems.append(
            f"{', '.join(too_large)} {'is' if len(too_large) == 1 else 'are'} larger than the {max_bytes} bytes Opus "
            "takes (the connection's max_upload_bytes; Opus refuses files over 10 MB): split or compress "
            + ("it" if len(too_large) == 1 else "them")
        )
    if problems:
        raise OpusInvalidArgumentError(f"Cannot upload to Opus: {'; '.join(problems)}")
