"""
One input of a workflow and the rules for a value of it: its type, conversion, files and JSON.

A workflow describes its inputs in the ``jobPayloadSchema`` of ``GET /workflow/{id}``: one entry per
input, keyed by its variable name, with an ``id``, a ``display_name``, a ``type`` and ``is_nullable``
(a v2 workflow graph is read into the same entries by :mod:`airflow_provider_opus.workflows`, with a
``type_definition`` beside the type). :class:`WorkflowInput` reads one entry and checks one value given for it;
:mod:`airflow_provider_opus.payload` resolves the names of a whole payload and reports every
problem at once. No I/O.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_opus.exceptions import OpusWorkflowSchemaError, describe_value
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
#: An input whose value is JSON text (v2 workflows): sent as text, never as a ``str``.
JSON_STRING_TYPE = "json_string"

log = logging.getLogger(__name__)
# Type words already warned about in this process: Opus adds types, and one warning says it.
_warned_types: set[str] = set()

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
    :param type_definition: what the items of an ``array`` are, as a v2 schema declares them (sent
        back as ``typeDefinition``); None when the schema gives none.
    """

    variable_name: str
    id: str
    display_name: str
    type: str
    is_nullable: bool
    allowed_file_types: frozenset[str] | None = None
    type_definition: Any = None

    @classmethod
    def from_schema_entry(cls, variable_name: str, entry: Any, path: str = "/workflow") -> WorkflowInput:
        """
        Read one entry of a ``jobPayloadSchema``, after checking each field it reads has a type Opus sends.

        :param variable_name: the key of the entry in the schema.
        :param entry: the entry, with ``id``, ``display_name``, ``type``, ``is_nullable`` and
            optional ``tags``.
        :param path: the path the schema was read from, for the error.
        :raises OpusWorkflowSchemaError: naming the entry and the field: an entry that is not an object, no
            type, an ``is_nullable`` that is not true or false (the string ``"false"`` would read as nullable),
            an ``allowed_file_types`` tag whose value is not a list of types (``"PDF"`` would read as D, F, P).
        """

        def problem(text: str) -> OpusWorkflowSchemaError:
            return OpusWorkflowSchemaError("GET", path, f"input {variable_name!r} of the workflow's schema {text}")

        if not isinstance(entry, Mapping):
            raise problem(f"is {_shown(entry)}, expected an object")
        kind = entry.get("type")
        if not isinstance(kind, str) or not kind.strip():
            raise problem(f"has type {_shown(kind)}, expected a type name such as 'str'")
        nullable = entry.get("is_nullable")
        if nullable is not None and not isinstance(nullable, bool):
            raise problem(f"has is_nullable {_shown(nullable)}, expected true or false")
        display_name = entry.get("display_name")
        if display_name is not None and not isinstance(display_name, str):
            raise problem(f"has display_name {_shown(display_name)}, expected a string")
        input_id = entry.get("id")
        if input_id is not None and (not isinstance(input_id, (str, int)) or isinstance(input_id, bool)):
            raise problem(f"has id {_shown(input_id)}, expected a string")
        return cls(
            variable_name=variable_name,
            id="" if input_id is None else str(input_id),
            display_name=display_name or variable_name,
            type=kind,
            is_nullable=bool(nullable),
            allowed_file_types=_allowed_file_types(entry.get("tags"), problem),
            type_definition=entry.get("type_definition"),
        )

    @property
    def quoted_name(self) -> str:
        """The display name as problem messages quote it."""
        return f"'{self.display_name}'"

    @property
    def takes_files(self) -> bool:
        """Whether the input's value is a file or a list of files."""
        return self.type in FILE_TYPES or self.is_file_array

    @property
    def is_file_array(self) -> bool:
        """Whether the input is a list of files declared as a v2 ``array`` of ``file`` items."""
        return self.type == "array" and _item_type(self.type_definition) == "file"

    def instance_item(self, value: Any) -> dict[str, Any]:
        """
        Return this input's entry of a ``jobPayloadSchemaInstance``.

        A v2 ``array`` carries its schema's item definition as ``typeDefinition``: without it Opus
        hands the workflow the URLs as text.

        :param value: the value as sent (checked, files uploaded).
        """
        item = {"value": value, "type": self.type, "displayName": self.display_name}
        if self.type == "array" and self.type_definition is not None:
            item["typeDefinition"] = self.type_definition
        return item

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
        if self.type == "array_files" or self.is_file_array:
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
        if self.type == JSON_STRING_TYPE:
            return _json_text(name, value)
        if self.type not in _EXPECTED:
            # Opus adds types: pass the value on with the schema's type rather than refuse a workflow.
            if self.type not in _warned_types:
                _warned_types.add(self.type)
                log.warning(
                    "Input %s has type %r, which this provider does not know: its value is sent as given",
                    name,
                    self.type,
                )
            return value, [problem] if (problem := json_problem(name, value)) else []
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
        return [value] if self.type == "file" else list(value)

    def is_missing(self, value: Any) -> bool:
        """
        Tell whether ``value`` leaves this input unfilled.

        :param value: a value as given, or None when none was.
        """
        # An empty file list gives the workflow nothing to work on, so it does not fill a required input.
        empty_list = isinstance(value, (list, tuple)) and not value
        return value is None or (self.takes_files and self.type != "file" and empty_list)


def _allowed_file_types(tags: Any, problem: Callable[[str], Exception]) -> frozenset[str] | None:
    """Return the extensions an ``allowed_file_types`` tag lists (None: no restriction), or raise ``problem``."""
    if tags is None:
        return None
    if not isinstance(tags, list):
        raise problem(f"has tags {_shown(tags)}, expected a list")
    allowed = None
    for index, tag in enumerate(tags):
        if not isinstance(tag, Mapping):
            raise problem(f"has tags[{index}] {_shown(tag)}, expected an object")
        if tag.get("variable_name") != "allowed_file_types":
            continue
        types = tag.get("value")
        if types is not None and (not isinstance(types, list) or not all(isinstance(t, str) for t in types)):
            raise problem(f"has an allowed_file_types tag of value {_shown(types)}, expected a list such as ['PDF']")
        # An empty list is read as "no restriction": an input accepting no file at all
        # could never be given, so that cannot be what the workflow means.
        allowed = frozenset(normalize_extension(t) for t in types or ()) or None
    return allowed


def _shown(value: Any) -> str:
    """Show a value read from a response, with its type (``null`` for None, as the response had it)."""
    return "null" if value is None else describe_value(value)


def _item_type(type_definition: Any) -> str | None:
    """Return the item type a v2 ``type_definition`` declares (``allowed_types[0].type``, or ``type``)."""
    if not isinstance(type_definition, Mapping):
        return None
    allowed = type_definition.get("allowed_types")
    first = allowed[0] if isinstance(allowed, list) and allowed else None
    kind = first.get("type") if isinstance(first, Mapping) else type_definition.get("type")
    return kind if isinstance(kind, str) else None


def _json_text(name: str, value: Any) -> tuple[Any, list[str]]:
    """Return a ``json_string`` value as JSON text: a dict or list is written, a string must already parse."""
    if isinstance(value, str):
        try:
            json.loads(value, parse_constant=_not_json)  # json reads NaN and Infinity, which JSON has not
        except ValueError as exc:
            return value, [f"{name}: expected JSON text, a dict or a list; the string is not JSON ({exc})"]
        return value, []
    if not isinstance(value, (dict, list, tuple)):
        return value, [f"{name}: expected JSON text, a dict or a list, got {describe_value(value)}"]
    if problem := json_problem(name, value):
        return value, [problem]
    return json.dumps(value), []


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


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")
