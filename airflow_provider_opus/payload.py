"""
Build and validate the ``jobPayloadSchemaInstance`` that ``POST /job/execute`` takes.

A workflow describes its inputs in the ``jobPayloadSchema`` of ``GET /workflow/{id}``: one entry per
input, keyed by its variable name, with an ``id``, a ``display_name``, a ``type`` and ``is_nullable``.
DAG authors name inputs however suits them (display name, variable name or id) and give plain Python
values. This module resolves the names, checks and converts the values, and reports every problem in
one :class:`~airflow_provider_opus.exceptions.OpusPayloadError`, so they can all be fixed in one go.

It does no I/O, so operators can validate inputs before initiating a job or uploading any file.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_opus.exceptions import OpusPayloadError, describe_value, show_value
from airflow_provider_opus.files import check_file_extension, is_url, normalize_extension
from airflow_provider_opus.json_values import not_json

# What a value of each (non-file) type must be, as problem messages say it.
_EXPECTED: dict[str, str] = {
    "str": "a string",
    "float": "a number",
    "bool": "a bool (True or False)",
    "array": "a list",
    "object": "a dict",
    "date": "a date (YYYY-MM-DD)",
}
_FILE_TYPES = ("file", "array_files")
_KNOWN_TYPES = ", ".join(sorted([*_EXPECTED, *_FILE_TYPES]))

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")


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


@dataclass
class _CheckedInputs:
    """
    User inputs, resolved and checked.

    Problems are best read in this order: bad values (in the order given), then required inputs
    missing (in schema order), then bad keys, last because their message lists every input.
    """

    #: The values as sent to Opus, by variable name.
    values: dict[str, Any] = field(default_factory=dict)
    #: The problems of each value given, by variable name, in the order given.
    value_problems: dict[str, list[str]] = field(default_factory=dict)
    #: Required inputs not given.
    missing: list[WorkflowInput] = field(default_factory=list)
    #: Keys that name no input, or one already named.
    key_problems: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Return every problem, in reading order."""
        values = [problem for problems in self.value_problems.values() for problem in problems]
        return values + [_required(inp) for inp in self.missing] + self.key_problems


class JobPayloadSchema:
    """
    The inputs of one workflow, to check user inputs against and build a job payload from.

    :param schema: the ``jobPayloadSchema`` of ``GET /workflow/{id}``, keyed by variable name.
    :param workflow_id: the workflow's id, only to name it in error messages.
    """

    def __init__(self, schema: Mapping[str, Any], workflow_id: str = "") -> None:
        self.workflow_id = workflow_id
        self.inputs: list[WorkflowInput] = [
            WorkflowInput.from_schema_entry(variable_name, entry) for variable_name, entry in schema.items()
        ]

    def resolve(self, key: str) -> WorkflowInput:
        """
        Find the input a user's key names.

        A variable name always wins, as it is unique. Otherwise an exact id or display name, and
        failing that a display name in any case, must match exactly one input. Display names are
        compared in Unicode normal form NFC: "Café" typed as an e and a combining accent (as some
        keyboards and file systems write it) names the input "Café" written with one é.

        :param key: display name, variable name or id of an input.
        :raises OpusPayloadError: if the key names no input, or several.
        """
        for inp in self.inputs:
            if inp.variable_name == key:
                return inp
        matches = [inp for inp in self.inputs if key == inp.id or _same_text(key, inp.display_name)]
        if not matches and isinstance(key, str):
            folded = _caseless(key)
            matches = [inp for inp in self.inputs if _caseless(inp.display_name) == folded]
        if len(matches) == 1:
            return matches[0]
        if matches:
            names = ", ".join(inp.variable_name for inp in matches)
            raise self._error([f"{show_value(key)} matches several inputs ({names}): use the variable name"])
        names = ", ".join(inp.display_name for inp in self.inputs)
        raise self._error([f"{show_value(key)} is not an input of this workflow (inputs: {names})"])

    def local_file_paths(self, inputs: Mapping[str, Any]) -> list[str]:
        """
        List the local files among the values of file inputs: those to upload before :meth:`build`.

        :param inputs: values keyed by display name, variable name or id.
        :return: each local path once, in schema order; http(s) URLs are left out.
        :raises OpusPayloadError: listing every problem found, so bad inputs fail before any upload.
        """
        values = self._checked_values(inputs)
        paths: list[str] = []
        for inp in self.inputs:
            for path in _files_of(inp, values.get(inp.variable_name)):
                if not is_url(path) and path not in paths:
                    paths.append(path)
        return paths

    def build(
        self, inputs: Mapping[str, Any], *, uploaded: Mapping[str, str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """
        Build the ``jobPayloadSchemaInstance`` for ``POST /job/execute``.

        Nullable inputs left out are left out of the instance too; a None given for one is sent as null.

        :param inputs: values keyed by display name, variable name or id.
        :param uploaded: the fileUrl each local file (as :meth:`local_file_paths` lists it) was
            uploaded to. Every local path must be in it: Opus cannot read the local disk.
        :return: ``{variable_name: {"value": ..., "type": ..., "displayName": ...}}`` in schema order.
        :raises OpusPayloadError: listing every problem found, or the local files not uploaded.
        """
        values = self._checked_values(inputs)
        uploaded = uploaded or {}
        instance: dict[str, dict[str, Any]] = {}
        not_uploaded: list[str] = []
        for inp in self.inputs:
            if inp.variable_name not in values:
                continue
            value = values[inp.variable_name]
            if inp.type in _FILE_TYPES and value is not None:
                urls = [uploaded.get(path, path) for path in _files_of(inp, value)]
                not_uploaded += [
                    f"'{inp.display_name}': local file {show_value(url)} was not uploaded"
                    for url in urls
                    if not is_url(url)
                ]
                value = urls if inp.type == "array_files" else urls[0]
            instance[inp.variable_name] = {"value": value, "type": inp.type, "displayName": inp.display_name}
        if not_uploaded:
            raise self._error(not_uploaded)
        return instance

    def instance_files(self, instance: Mapping[str, Any]) -> list[str]:
        """
        List the files a checked ``jobPayloadSchemaInstance`` sends: the values of its file inputs.

        :param instance: an instance :meth:`build` made or :meth:`validate_instance` accepted.
        :return: each file (a fileUrl) once, in schema order.
        """
        files: dict[str, None] = {}  # an ordered set
        for inp in self.inputs:
            item = instance.get(inp.variable_name)
            if isinstance(item, Mapping):
                files.update(dict.fromkeys(f for f in _files_of(inp, item.get("value")) if isinstance(f, str)))
        return list(files)

    def validate_instance(self, instance: Mapping[str, Any]) -> None:
        """
        Check a ``jobPayloadSchemaInstance`` a user wrote themselves.

        The instance is reduced to its values, which are checked by the same rules as the
        ``inputs`` of :meth:`build`; they must already be in the form :meth:`build` would send
        (``"2025-11-09"``, not a date object), as the instance is sent as is.

        :param instance: ``{variable_name: {"value": ..., "type": ...}}``.
        :raises OpusPayloadError: listing every problem found.
        """
        if not isinstance(instance, Mapping):
            raise self._error([f"the jobPayloadSchemaInstance must be a dict, got {describe_value(instance)}"])
        by_variable_name = {inp.variable_name: inp for inp in self.inputs}
        given: dict[str, Any] = {}
        shape_problems: dict[str, str] = {}
        key_problems: list[str] = []
        for key, item in instance.items():
            inp = by_variable_name.get(key)
            if inp is None:
                key_problems.append(
                    f"{show_value(key)} is not a variable name of this workflow "
                    f"(variable names: {', '.join(by_variable_name)})"
                )
            elif not isinstance(item, Mapping) or "value" not in item or "type" not in item:
                shape = f"{{'value': ..., 'type': {inp.type!r}}}"
                shape_problems[key] = f"'{inp.display_name}': expected {shape}, got {describe_value(item)}"
            elif item["type"] != inp.type:
                given_type = show_value(item["type"])
                shape_problems[key] = (
                    f"'{inp.display_name}': type {given_type} does not match the workflow's type {inp.type!r}"
                )
            else:
                given[key] = item["value"]
                # The value is checked below; the item's other fields are sent as they are too.
                others = {field: part for field, part in item.items() if field != "value"}
                if places := list(not_json(others)):
                    shape_problems[key] = _first_place(f"'{inp.display_name}'", places)
        checked = self._collect(given)
        problems: list[str] = []
        for key in instance:
            if key in shape_problems:
                problems.append(shape_problems[key])
            elif key in given:
                inp = by_variable_name[key]
                problems += checked.value_problems.get(key) or _as_is_problems(inp, given[key], checked.values[key])
        # A malformed item is reported above: do not also call its input missing.
        problems += [_required(inp) for inp in checked.missing if inp.variable_name not in shape_problems]
        problems += key_problems
        if problems:
            raise self._error(problems)

    def _checked_values(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Return the values of user inputs as sent to Opus, by variable name, or raise every problem."""
        checked = self._collect(inputs)
        if problems := checked.problems():
            raise self._error(problems)
        return checked.values

    def _collect(self, inputs: Mapping[str, Any]) -> _CheckedInputs:
        """Resolve and check user inputs, keyed by display name, variable name or id."""
        checked = _CheckedInputs()
        if not isinstance(inputs, Mapping):
            checked.key_problems.append(f"inputs must be a dict of input name to value, got {describe_value(inputs)}")
            return checked
        first_key: dict[str, str] = {}
        for key, value in inputs.items():
            try:
                inp = self.resolve(key)
            except OpusPayloadError as exc:
                checked.key_problems += exc.problems
                continue
            if inp.variable_name in first_key:
                checked.key_problems.append(
                    f"'{inp.display_name}' is given more than once "
                    f"(as {show_value(first_key[inp.variable_name])} and {show_value(key)}): give it once"
                )
            else:
                first_key[inp.variable_name] = key
                if not _is_missing(inp, value):
                    value, problems = _check_value(inp, value)
                    if problems:
                        checked.value_problems[inp.variable_name] = problems
                checked.values[inp.variable_name] = value
        checked.missing = [
            inp
            for inp in self.inputs
            if not inp.is_nullable and _is_missing(inp, checked.values.get(inp.variable_name))
        ]
        return checked

    def _error(self, problems: list[str]) -> OpusPayloadError:
        count = "1 input is" if len(problems) == 1 else f"{len(problems)} inputs are"
        workflow = f" for workflow {self.workflow_id}" if self.workflow_id else ""
        return OpusPayloadError(f"{count} invalid{workflow}: {'; '.join(problems)}", problems)


def build_job_payload(
    schema: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    workflow_id: str = "",
    uploaded: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """
    Build a ``jobPayloadSchemaInstance`` in one call; see :meth:`JobPayloadSchema.build`.

    :param schema: the workflow's ``jobPayloadSchema``.
    :param inputs: values keyed by display name, variable name or id.
    :param workflow_id: the workflow's id, only to name it in error messages.
    :param uploaded: the fileUrl each local file was uploaded to.
    """
    return JobPayloadSchema(schema, workflow_id).build(inputs, uploaded=uploaded)


# What _convert returns for a value that does not fit its type.
_INVALID = object()


def _check_value(inp: WorkflowInput, value: Any) -> tuple[Any, list[str]]:
    """Check a value given (not None) for ``inp``; return it as sent to Opus, and its problems."""
    name = f"'{inp.display_name}'"
    if inp.type == "file":
        path, problem = _check_file(value, inp.allowed_file_types)
        return path, [f"{name}: {problem}"] if problem else []
    if inp.type == "array_files":
        if not isinstance(value, (list, tuple)):
            return value, [f"{name}: expected a list of file URLs or local paths, got {describe_value(value)}"]
        paths: list[Any] = []
        problems: list[str] = []
        for index, item in enumerate(value):
            path, problem = _check_file(item, inp.allowed_file_types)
            paths.append(path)
            if problem:
                problems.append(f"{name}[{index}]: {problem}")
        return paths, problems
    if inp.type not in _EXPECTED:
        return value, [
            f"{name} has type {inp.type!r} in the workflow, which this provider cannot send "
            f"(known types: {_KNOWN_TYPES})"
        ]
    converted = _convert(inp.type, value)
    if converted is _INVALID:
        return value, [f"{name}: expected {_EXPECTED[inp.type]}, got {describe_value(value)}"]
    # The payload is sent as JSON after the job is initiated: what JSON cannot carry must fail now.
    if places := list(not_json(converted)):
        return value, [_first_place(name, places)]
    return converted, []


def _convert(kind: str, value: Any) -> Any:
    """Return ``value`` as Opus takes a ``kind`` (a non-file type), or ``_INVALID``."""
    if kind == "str" and isinstance(value, str):
        return value
    # bool is an int subclass, but True is never meant as a number; NaN and infinity are not JSON.
    # (An int too large for a JSON number is a number all the same: _not_json says what is wrong.)
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


def _first_place(name: str, places: list[str]) -> str:
    """Return the problem of the first place :func:`_not_json` found in an input, and how many more there are."""
    more = f" (and {len(places) - 1} more places in {name})" if len(places) > 1 else ""
    return f"{name}{places[0]}{more}"


def _same_text(a: Any, b: str) -> bool:
    """Tell whether ``a`` is the text ``b``, in any Unicode normal form."""
    return a == b or (isinstance(a, str) and unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b))


def _caseless(text: str) -> str:
    """Return ``text`` folded for caseless matching in any normal form (Unicode's canonical caseless match)."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())


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


def _required(inp: WorkflowInput) -> str:
    return f"'{inp.display_name}' is required"


def _as_is_problems(inp: WorkflowInput, given: Any, sent: Any) -> list[str]:
    """Return why a valid value of a hand-written instance would not arrive as meant, sent as is."""
    name = f"'{inp.display_name}'"
    # build() would convert a date object, a tuple or a Path; an instance is not converted.
    if sent != given:
        return [f"{name}: expected {show_value(sent)} as the instance is sent as is, got {describe_value(given)}"]
    return [
        f"{name}: {show_value(path)} is a local path, and an instance is sent as is: give a "
        "fileUrl, or pass the path in inputs= to have it uploaded first"
        for path in _files_of(inp, given)
        if not is_url(path)
    ]


def _files_of(inp: WorkflowInput, value: Any) -> list[str]:
    """Return the files a checked value of ``inp`` holds: none for non-file inputs or None."""
    if value is None or inp.type not in _FILE_TYPES:
        return []
    return list(value) if inp.type == "array_files" else [value]


def _is_missing(inp: WorkflowInput, value: Any) -> bool:
    # An empty file list gives the workflow nothing to work on, so it does not fill a required input.
    return value is None or (inp.type == "array_files" and isinstance(value, (list, tuple)) and not value)
