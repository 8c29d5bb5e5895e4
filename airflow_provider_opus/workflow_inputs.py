"""
One input of a workflow and the rules for a value of it: its type, conversion, files and JSON.

A workflow describes its inputs in the ``jobPayloadSchema`` of ``GET /workflow/{id}``: one entry per
input, keyed by its variable name, with an ``id``, a ``display_name``, a ``type`` and ``is_nullable``.
:class:`WorkflowInput` reads one entry and checks one value given for it;
:mod:`airflow_provider_opus.payload` resolves the names of a whole payload and reports every
problem at once. No I/O.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_opus.exceptions import describe_value
from airflow_provider_opus.files import check_file_extension, normalize_extension
from airflow_provider_opus.json_values import json_problem

# What a value of each (non-file) type must be, as problem messages say it.
_EXPECTED: dict[str, str] = {
    "str": "a string",
    "float": "a number",
    "bool": "a bool (True or False)",
    "array": "a list",
    "object": "a dict",
    "date": "a date (YYYY-MM-DD)",
}
FILE_TYPES = ("file", "array_files")
_KNOWN_TYPES = ", ".join(sorted([*_EXPECTED, *FILE_TYPES]))

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")

# What _convert returns for a value that does not fit its type.
_INVALID = object()


@dataclass(frozen=True)
class WorkflowInput:
    """
    One input of a workflow, as an entry of its ``jobPayloadSchema`` describes it.

    :param variable_name: key of the input in the schema and in a ``jobPayloadSchemaInstance``.
    :param id: short id of the input (its variable name without the ``workflow_input_`` prefix).
    :param display_name: name of the input in the Opus UI.
    :param type: Opus type: ``str``, ``float``, ``bool``, ``array``, ``object``, ``date``, ``file``
        or ``array_files``.
    :param is_nullable: whether the input may be left out or given as None.
    :param allowed_file_types: extensions (lowercase, no dot) a file input accepts, or None when the
        schema does not restrict them.
    """

    variable_name: str
    id: str
    display_name: str
    type: str
    is_nullable: bool
    allowed_file_types: frozenset[str] | None = None

    @classmethod
    def from_schema_entry(cls, variable_name: str, entry: Mapping[str, Any]) -> WorkflowInput:
        """
        Read one entry of a ``jobPayloadSchema``.

        :param variable_name: the key of the entry in the schema.
        :param entry: the entry, with ``id``, ``display_name``, ``type``, ``is_nullable`` and
            optional ``tags``.
        """
        allowed = None
        for tag in entry.get("tags") or ():
            if isinstance(tag, Mapping) and tag.get("variable_name") == "allowed_file_types":
                # An empty list is read as "no restriction": an input accepting no file at all
                # could never be given, so that cannot be what the workflow means.
                allowed = frozenset(normalize_extension(t) for t in tag.get("value") or ()) or None
        return cls(
            variable_name=variable_name,
            id=str(entry.get("id", "")),
            display_name=str(entry.get("display_name") or variable_name),
            type=str(entry.get("type", "")),
            is_nullable=bool(entry.get("is_nullable", False)),
            allowed_file_types=allowed,
        )

    @property
    def quoted_name(self) -> str:
        """The display name as problem messages quote it."""
        return f"'{self.display_name}'"

    @property
    def takes_files(self) -> bool:
        """Whether the input's value is a file or a list of files."""
        return self.type in FILE_TYPES

    def check(self, value: Any) -> tuple[Any, list[str]]:
        """
        Check a value given (not None) for this input.

        :param value: the value as the user gave it.
        :return: the value as sent to Opus, and its problems (none when it is fine).
        """
        name = self.quoted_name
        if self.type == "file":
            path, problem = _check_file(value, self.allowed_file_types)
            return path, [f"{name}: {problem}"] if problem else []
        if self.type == "array_files":
            if not isinstance(value, (list, tuple)):
                return value, [f"{name}: expected a list of file URLs or local paths, got {describe_value(value)}"]
            paths: list[Any] = []
            problems: list[str] = []
            for index, item in enumerate(value):
                path, problem = _check_file(item, self.allowed_file_types)
                paths.append(path)
                if problem:
                    problems.append(f"{name}[{index}]: {problem}")
            return paths, problems
        if self.type not in _EXPECTED:
            return value, [
                f"{name} has type {self.type!r} in the workflow, which this provider cannot send "
                f"(known types: {_KNOWN_TYPES})"
            ]
        converted = _convert(self.type, value)
        if converted is _INVALID:
            return value, [f"{name}: expected {_EXPECTED[self.type]}, got {describe_value(value)}"]
        # The payload is sent as JSON after the job is initiated: what JSON cannot carry must fail now.
        if problem := json_problem(name, converted):
            return value, [problem]
        return converted, []

    def files_in(self, value: Any) -> list[str]:
        """
        List the files a checked value of this input holds: none for a non-file input or None.

        :param value: a value as :meth:`check` returned it.
        """
        if value is None or not self.takes_files:
            return []
        return list(value) if self.type == "array_files" else [value]

    def is_missing(self, value: Any) -> bool:
        """
        Tell whether ``value`` leaves this input unfilled.

        :param value: a value as given, or None when none was.
        """
        # An empty file list gives the workflow nothing to work on, so it does not fill a required input.
        return value is None or (self.type == "array_files" and isinstance(value, (list, tuple)) and not value)


def _convert(kind: str, value: Any) -> Any:
    """Return ``value`` as Opus takes a ``kind`` (a non-file type), or ``_INVALID``."""
    if kind == "str" and isinstance(value, str):
        return value
    # bool is an int subclass, but True is never meant as a number; NaN and infinity are not JSON.
    # (An int too large for a JSON number is a number all the same: json_problem says what is wrong.)
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value if not isinstance(value, float) or math.isfinite(value) else _INVALID
    if kind == "bool" and isinstance(value, bool):
        return value
    # JSON has no tuple: a tuple stands for the list it holds.
    if kind == "array" and isinstance(value, (list, tuple)):
        return list(value)
    if kind == "object" and isinstance(value, dict):
        return value
    if kind == "date":
        day = _to_date(value)
        return _INVALID if day is None else day.isoformat()
    return _INVALID


def _to_date(value: Any) -> dt.date | None:
    """Return the date ``value`` stands for, or None if it stands for none."""
    # datetime first: it is a subclass of date. pendulum's DateTime and Date subclass them too.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    try:
        if _ISO_DATE.fullmatch(value):
            return dt.date.fromisoformat(value)
        if _ISO_DATETIME.fullmatch(value):
            # Python 3.10 cannot read a "Z" suffix: spell UTC as an offset.
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:  # well-formed but impossible, like 2025-02-30
        pass
    return None


def _check_file(value: Any, allowed: frozenset[str] | None) -> tuple[Any, str | None]:
    """Return a file value as a string (path or URL) and its problem, if any."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        return value, f"expected a file URL (http/https) or local path, got {describe_value(value)}"
    return value, check_file_extension(value, allowed)
