"""Output-file downloads: where a file goes, what it is called, and that it lands whole or not at all.

A destination is a local path or an Airflow ``ObjectStoragePath`` (``file://``, ``s3://``,
``gs://``, ...; a string with ``://`` is read as one). Its folder is created and proven writable
(a probe file written and removed) before a byte is downloaded. A download is written under a
temporary name beside the final one and renamed when complete: an interrupted download never
leaves a partial file under the final name. Which hosts may receive the service key is the
connection's rule (:meth:`~airflow_provider_opus.connection.OpusConnectionSettings.may_send_key_to`).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from airflow_provider_opus.api import DOWNLOAD_FILE, error_for_status
from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusInvalidArgumentError,
    OpusNotFoundError,
    OpusRequestError,
    OpusStorageError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Bytes read from the network and written at a time: memory stays flat whatever the file's size.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
#: Redirects followed for one download (never with the service key).
MAX_REDIRECTS = 5
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

#: A local ``Path`` or an Airflow ``ObjectStoragePath``: both have the methods used here.
Destination = Any


def as_destination(value: str | os.PathLike[str] | Destination, name: str = "destination") -> Destination:
    """
    Return ``value`` as a path object: an ``ObjectStoragePath`` for a URL or one already, else a local ``Path``.

    :param value: a path, a URL such as ``s3://bucket/prefix``, or an ``ObjectStoragePath``.
    :param name: the argument's name, for the error.
    :raises OpusInvalidArgumentError: ``value`` is not a path.
    """
    from airflow.sdk import ObjectStoragePath

    if isinstance(value, str) and "://" in value:
        return ObjectStoragePath(value)
    # Before the path check: on Airflow 3.1 an ObjectStoragePath is os.PathLike, as "file:/..." for a local one.
    if isinstance(value, ObjectStoragePath):
        return value
    if isinstance(value, (str, os.PathLike)) and os.fspath(value).strip():
        return Path(os.fspath(value)).expanduser().absolute()
    raise OpusInvalidArgumentError(
        f"{name} must be a local path, a URL such as s3://bucket/folder, or an ObjectStoragePath; got {value!r}"
    )


def check_writable_folder(folder: Destination, name: str = "destination") -> None:
    """
    Create ``folder`` if needed and prove that files can be written in it.

    :param folder: the folder files will be written to.
    :param name: the argument's name, for the error.
    :raises OpusInvalidArgumentError: the folder cannot be created or written, naming it and why.
    """
    probe = folder / f".opus-write-check-{uuid.uuid4().hex}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as stream:
            stream.write(b"")
        probe.unlink()
    except (OSError, ValueError) as exc:
        raise OpusInvalidArgumentError(
            f"{name} {folder} cannot be written ({type(exc).__name__}: {exc}); choose a folder this worker "
            "can write, or fix its permissions or credentials"
        ) from None


def file_name_for(url: str, taken: set[str]) -> str:
    """
    Return a safe, unique local file name for an output file's URL.

    The URL's last path segment, decoded, with anything but letters, digits, ``.``, ``_`` and ``-``
    replaced; ``output`` when nothing is left; ``name-2.ext`` (and on) when the name is taken.

    :param url: the output file's URL.
    :param taken: names already used in the folder; the returned name is added to it.
    """
    segment = posixpath.basename(unquote(urlsplit(url).path))
    name = _UNSAFE_NAME.sub("_", segment).strip("._") or "output"
    stem, extension = posixpath.splitext(name)
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{stem}-{number}{extension}"
    taken.add(candidate)
    return candidate


def write_whole(destination: Destination, chunks: Iterable[bytes]) -> int:
    """
    Write ``chunks`` to ``destination`` through a temporary file beside it; rename it when complete.

    :param destination: the final path.
    :param chunks: the file's bytes, in order.
    :return: the number of bytes written.
    """
    partial = destination.parent / f".{destination.name}.{uuid.uuid4().hex}.partial"
    size = 0
    try:
        with partial.open("wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
                size += len(chunk)
        partial.rename(destination)
    except BaseException:
        _remove_quietly(partial)
        raise
    return size


def redirect_target(url: str, location: str | None, hops: int) -> str:
    """
    Return the URL a redirect points to, checked.

    :param url: the URL that answered with the redirect.
    :param location: its ``Location`` header.
    :param hops: redirects followed so far.
    :raises OpusStorageError: no ``Location``, one that is not http(s), or too many redirects.
    """
    from urllib.parse import urljoin

    path = shown_url(url)
    if hops >= MAX_REDIRECTS:
        raise OpusStorageError("GET", path, f"more than {MAX_REDIRECTS} redirects")
    target = urljoin(url, location or "")
    if not location or urlsplit(target).scheme not in ("http", "https"):
        raise OpusStorageError("GET", path, f"a redirect to {shown_url(target) if location else 'nowhere'}")
    return target


def shown_url(url: str) -> str:
    """Return ``url`` without its query and fragment (a presigned URL's signature is in its query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def download_error_for_status(
    path: str, status_code: int, body: bytes, retry_after_header: str | None, *, key_sent: bool
) -> OpusRequestError:
    """
    Return the exception for a non-2xx answer to an output-file download.

    429 and 5xx are read as for the API (and retried); a refusal says whether the key was sent,
    since a file host the connection does not list never receives it.

    :param path: the file's URL without its query.
    :param status_code: the HTTP status.
    :param body: the start of the response body.
    :param retry_after_header: the ``Retry-After`` header, if any.
    :param key_sent: whether the request carried the service key.
    """
    error = error_for_status(DOWNLOAD_FILE, path, status_code, body, retry_after_header)
    if status_code in (401, 403):
        reason = (
            "the file host refused the service key"
            if key_sent
            else "the file host asks for credentials, and the service key goes only to the API host and the "
            "connection's file_hosts: add this host to file_hosts if it is Opus's"
        )
        return OpusAuthError(DOWNLOAD_FILE.method, path, reason, status_code=status_code)
    if status_code == 404:
        return OpusNotFoundError(DOWNLOAD_FILE.method, path, "output file not found", status_code=status_code)
    return error


def _remove_quietly(path: Destination) -> None:
    with contextlib.suppress(OSError, ValueError):  # never written, or already gone
        path.unlink()
