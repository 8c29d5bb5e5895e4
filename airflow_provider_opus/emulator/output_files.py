"""
The files a completed emulator job produces: their names, and their content, generated as it is sent.

A file's bytes depend only on the job id, the file's index and its size, so a test can compute what a
download must contain (:func:`expected_output_file`) and the emulator never stores a file: it streams
each one in chunks, and serving a 1 GiB file takes about as much memory as serving a 4 KiB one.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Where the storage listener serves output files.
OUTPUT_FILES_PATH = "/media/private/generated"
#: Bytes per output file unless a workflow's ``output_file_bytes`` says otherwise.
DEFAULT_OUTPUT_FILE_BYTES = 4096
#: Every output file starts with this, so that it looks like a PDF to whoever opens it.
OUTPUT_FILE_HEADER = b"%PDF-1.4\n"
#: Bytes per chunk when a file is streamed.
CHUNK_SIZE = 1024 * 1024

_NAME_PREFIX, _NAME_SUFFIX = "output_", ".pdf"
# The bytes after the header repeat this many pseudo-random bytes. A prime, so that the repeats never line
# up with chunk or buffer boundaries, and a byte lost or doubled anywhere in a download changes what follows.
_PATTERN_SIZE = 65_537


def output_file_name(job_id: str, index: int) -> str:
    """
    Return the name of a job's output file: ``output_<job>.pdf`` for the first, ``output_<job>_<n>.pdf`` after.

    :param job_id: the jobExecutionId.
    :param index: the file's position in ``outputFiles``, from 1.
    """
    suffix = "" if index == 1 else f"_{index}"
    return f"{_NAME_PREFIX}{job_id}{suffix}{_NAME_SUFFIX}"


def output_file_path(job_id: str, index: int = 1) -> str:
    """
    Return the path on the storage listener of a job's output file, e.g. ``/media/private/generated/output_<job>.pdf``.

    :param job_id: the jobExecutionId.
    :param index: the file's position in ``outputFiles``, from 1.
    """
    return f"{OUTPUT_FILES_PATH}/{output_file_name(job_id, index)}"


def parse_output_file_name(name: str) -> tuple[str, int] | None:
    """
    Read the job id and the index from an output file's name.

    :param name: the last segment of the file's path.
    :return: ``(job_id, index)``, or None for a name :func:`output_file_name` never gives.
    """
    if not name.startswith(_NAME_PREFIX) or not name.endswith(_NAME_SUFFIX):
        return None
    stem = name[len(_NAME_PREFIX) : -len(_NAME_SUFFIX)]
    job_id, _, index = stem.rpartition("_")
    # Job ids have no underscore; "_1" and "_02" are not names the emulator gives.
    if job_id and index.isdigit() and index == str(int(index)) and int(index) >= 2:
        return job_id, int(index)
    if not stem or "_" in stem:
        return None
    return stem, 1


def iter_output_file(job_id: str, index: int, size: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """
    Generate an output file's content in chunks.

    The content is ``OUTPUT_FILE_HEADER`` followed by pseudo-random bytes derived from the job id and the
    index, cut to ``size`` bytes.

    :param job_id: the jobExecutionId.
    :param index: the file's position in ``outputFiles``, from 1.
    :param size: the file's size in bytes.
    :param chunk_size: the most bytes per chunk.
    :raises ValueError: for a negative size or a chunk size below 1.
    """
    if size < 0 or chunk_size < 1:
        raise ValueError(f"size must be >= 0 and chunk_size >= 1, got {size} and {chunk_size}")
    pattern = hashlib.shake_256(f"opus-emulator-output:{job_id}:{index}".encode()).digest(_PATTERN_SIZE)
    # Long enough that every chunk is one slice of it, whatever its offset in the pattern.
    window = pattern * -(-(chunk_size + _PATTERN_SIZE) // _PATTERN_SIZE)
    header = OUTPUT_FILE_HEADER
    sent = 0
    while sent < size:
        count = min(chunk_size, size - sent)
        if sent < len(header):
            head = header[sent : sent + count]
            chunk = head + window[: count - len(head)]
        else:
            start = (sent - len(header)) % _PATTERN_SIZE
            chunk = window[start : start + count]
        yield chunk
        sent += count


def expected_output_file(job_id: str, index: int = 1, size: int = DEFAULT_OUTPUT_FILE_BYTES) -> bytes:
    """
    Return the whole content of an output file, to compare a download with.

    :param job_id: the jobExecutionId.
    :param index: the file's position in ``outputFiles``, from 1.
    :param size: the file's size: the workflow's ``output_file_bytes``.
    """
    return b"".join(iter_output_file(job_id, index, size))
