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
import errno
import hashlib
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
    OpusResponseError,
    OpusStorageError,
)
from airflow_provider_opus.urls import checked_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

#: Bytes read from the network and written at a time: memory stays flat whatever the file's size.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
#: Redirects followed for one download (never with the service key).
MAX_REDIRECTS = 5
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
#: The most bytes a file name may have on most file systems (ext4, XFS, APFS, NTFS in characters).
MAX_NAME_BYTES = 255
#: What the temporary name adds to a name: ``.``, ``.``, 32 hex digits, ``.partial``.
_PARTIAL_EXTRA_BYTES = 42
#: The longest name made for an output file (or a job's folder): with the temporary name's
#: additions it stays within :data:`MAX_NAME_BYTES`, with room to spare for a folder's own name.
MAX_FILE_NAME_CHARS = 200
_MAX_EXTENSION_CHARS = 16
_HASH_CHARS = 12

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


def check_destination(target: Destination) -> None:
    """
    Check, before any request, that ``target`` can be written: not an existing folder, in a writable folder.

    :param target: the file a download will write.
    :raises OpusInvalidArgumentError: it is a folder, or its folder cannot be written.
    """
    try:
        is_folder = target.is_dir()
    except (OSError, ValueError):
        is_folder = False  # the folder check below says what is wrong
    if is_folder:
        raise OpusInvalidArgumentError(
            f"destination {target} is a folder: give the path of the file to write, e.g. {target / 'report.pdf'}"
        )
    check_writable_folder(target.parent)


def check_download_size(path: str, content_length: str | None, limit: int) -> None:
    """
    Refuse a download whose announced size is over the connection's ``max_download_bytes``, before a byte is read.

    :param path: the file's URL without its query.
    :param content_length: the ``Content-Length`` header, if any.
    :param limit: ``max_download_bytes``.
    :raises OpusResponseError: the file is announced larger than ``limit``.
    """
    try:
        announced = int(content_length) if content_length is not None else 0
    except ValueError:
        announced = 0
    if announced > limit:
        raise _too_large(path, limit)


async def raw_chunks(path: str, chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """
    Yield a download's bytes as the server stored them (never decoded), at most ``limit`` of them.

    :param path: the file's URL without its query.
    :param chunks: the response's undecoded chunks.
    :param limit: ``max_download_bytes``.
    :raises OpusResponseError: more than ``limit`` bytes arrived (the partial file is removed by :func:`write_whole`).
    """
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _too_large(path, limit)
        yield chunk


def _too_large(path: str, limit: int) -> OpusResponseError:
    return OpusResponseError(
        DOWNLOAD_FILE.method,
        path,
        f"the file is larger than the connection's max_download_bytes ({limit} bytes): raise it if that is expected",
    )


def file_name_for(url: str, taken: set[str]) -> str:
    """
    Return a safe, unique local file name for an output file's URL.

    The URL's last path segment, decoded, with anything but letters, digits, ``.``, ``_`` and ``-``
    replaced; ``output`` when nothing is left; ``name-2.ext`` (and on) when the name is taken. A name
    longer than :data:`MAX_FILE_NAME_CHARS` is shortened, keeping its extension, with a hash of the whole
    name in place of what was cut, so two long names stay two names.

    :param url: the output file's URL.
    :param taken: names already used in the folder; the returned name is added to it.
    """
    segment = posixpath.basename(unquote(urlsplit(url).path))
    name = _shortened(_UNSAFE_NAME.sub("_", segment).strip("._") or "output", MAX_FILE_NAME_CHARS)
    stem, extension = _split_extension(name)
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        suffix = f"-{number}{extension}"
        candidate = stem[: MAX_FILE_NAME_CHARS - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


def job_folder_name(job_execution_id: str) -> str:
    """
    Return the name of the folder a job's output files go to inside ``download_to``: the job id, made safe.

    A folder per job keeps two tasks that download to one folder from overwriting each other's files;
    two downloads of one job write the same files.

    :param job_execution_id: the job, a checked id (:func:`~airflow_provider_opus.api.checked_job_id`).
    """
    safe = _UNSAFE_NAME.sub("_", job_execution_id).strip("._")
    if safe != job_execution_id or not safe:
        # Two ids made safe alike stay two folders.
        safe = f"{safe[:100]}-{hashlib.sha256(job_execution_id.encode()).hexdigest()[:12]}".lstrip("-")
    return _shortened(safe, MAX_FILE_NAME_CHARS)


def _split_extension(name: str) -> tuple[str, str]:
    """Return a name's stem and extension; an "extension" too long to be one is part of the stem."""
    stem, extension = posixpath.splitext(name)
    return (stem, extension) if len(extension) <= _MAX_EXTENSION_CHARS else (name, "")


def _shortened(name: str, limit: int) -> str:
    """Return ``name`` (ASCII) if it fits ``limit``; else its start, a hash of all of it, and its extension."""
    if len(name) <= limit:
        return name
    stem, extension = _split_extension(name)
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_CHARS]
    return f"{stem[: limit - len(extension) - _HASH_CHARS - 1]}-{digest}{extension}"


def write_whole(destination: Destination, chunks: Iterable[bytes]) -> int:
    """
    Write ``chunks`` to ``destination`` through a temporary file beside it; rename it when complete.

    The temporary name starts with as much of the final name as keeps it within the 255 bytes a file
    name may have; a final name longer than that is refused before a byte is written.

    :param destination: the final path.
    :param chunks: the file's bytes, in order.
    :return: the number of bytes written.
    :raises OpusInvalidArgumentError: the file system refuses the name as too long.
    """
    name = destination.name
    if isinstance(destination, Path) and len(os.fsencode(name)) > MAX_NAME_BYTES:
        raise _name_too_long(destination)
    start = os.fsencode(name)[: MAX_NAME_BYTES - _PARTIAL_EXTRA_BYTES].decode(errors="ignore")
    partial = destination.parent / f".{start}.{uuid.uuid4().hex}.partial"
    size = 0
    try:
        with partial.open("wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
                size += len(chunk)
        partial.rename(destination)
    except BaseException as exc:
        _remove_quietly(partial)
        if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
            raise _name_too_long(destination) from None
        raise
    return size


def _name_too_long(destination: Destination) -> OpusInvalidArgumentError:
    size = len(os.fsencode(destination.name))
    return OpusInvalidArgumentError(
        f"Cannot write the output file {destination}: its name has {size} bytes, more than the file system "
        f"allows ({MAX_NAME_BYTES} on most): choose a shorter name"
    )


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
    with contextlib.suppress(OpusInvalidArgumentError):  # a URL parsers read differently is no place to go
        if location:
            return checked_url(target, "redirect")
    raise OpusStorageError("GET", path, f"a redirect to {shown_url(target) if location else 'nowhere'}")


def shown_url(url: str) -> str:
    """Return ``url`` without its query and fragment (a presigned URL's signature is in its query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def download_error_for_status(
    path: str,
    status_code: int,
    body: bytes,
    retry_after_header: str | None,
    *,
    key_sent: bool,
    redirected: bool = False,
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
    :param redirected: the request followed a redirect (which never carries the key, whatever the host).
    """
    error = error_for_status(DOWNLOAD_FILE, path, status_code, body, retry_after_header)
    if status_code in (401, 403):
        if key_sent:
            reason = "the file host refused the service key"
        elif redirected:
            reason = (
                "the file host asks for credentials after a redirect, and the service key is never sent through "
                "a redirect (it could carry the key to another host): have Opus link the file where it is served"
            )
        else:
            reason = (
                "the file host asks for credentials, and the service key goes only to the API host and the "
                "connection's file_hosts: add this host to file_hosts if it is Opus's"
            )
        return OpusAuthError(DOWNLOAD_FILE.method, path, reason, status_code=status_code)
    if status_code == 404:
        return OpusNotFoundError(DOWNLOAD_FILE.method, path, "output file not found", status_code=status_code)
    return error


def _remove_quietly(path: Destination) -> None:
    with contextlib.suppress(OSError, ValueError):  # never written, or already gone
        path.unlink()
