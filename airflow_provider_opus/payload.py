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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_opus.exceptions import OpusInvalidArgumentError, OpusPayloadError

SUPPORTED_FILE_EXTENSIONS: frozenset[str] = frozenset(
    {"jpeg", "png", "jpg", "pdf", "docx", "csv", "xls", "xlsx", "txt", "json", "html", "xml"}
)
"""File extensions Opus accepts for uploads: lowercase, without the dot."""

ACCESS_SCOPES: tuple[str, ...] = ("all", "user", "workspace", "organization")
"""The values ``POST /job/file/upload`` accepts as ``accessScope``."""


def check_access_scope(access_scope: str) -> None:
    """
    Check an upload's access scope.

    :param access_scope: who may read an uploaded file.
    :raises OpusInvalidArgumentError: if it is not one of all, user, workspace or organization.
    """
    if access_scope not in ACCESS_SCOPES:
        raise OpusInvalidArgumentError(f"access_scope must be one of {', '.join(ACCESS_SCOPES)}, got {access_scope!r}")


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

# Longest repr of a user's value shown in a message: a huge value must not swamp the error.
_MAX_SHOWN = 60

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
                allowed = frozenset(_normalize_extension(t) for t in tag.get("value") or ()) or None
        return cls(
            variable_name=variable_name,
            id=str(entry.get("id", "")),
            display_name=str(entry.get("display_name") or variable_name),
            type=str(entry.get("type", "")),
            is_nullable=bool(entry.get("is_nullable", False)),
            allowed_file_types=allowed,
        )


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
        failing that a display name in any case, must match exactly one input.

        :param key: display name, variable name or id of an input.
        :raises OpusPayloadError: if the key names no input, or several.
        """
        match = self._match(key)
        if isinstance(match, str):
            raise self._error([match])
        return match

    def validate(self, inputs: Mapping[str, Any]) -> None:
        """
        Check user inputs against the schema.

        :param inputs: values keyed by display name, variable name or id.
        :raises OpusPayloadError: listing every problem found.
        """
        _, problems = self._collect(inputs)
        if problems:
            raise self._error(problems)

    def local_file_paths(self, inputs: Mapping[str, Any]) -> list[str]:
        """
        List the local files among the values of file inputs: those to upload before :meth:`build`.

        :param inputs: values keyed by display name, variable name or id.
        :return: each local path once, in schema order; http(s) URLs are left out.
        :raises OpusPayloadError: as :meth:`validate`, so bad inputs fail before any upload.
        """
        values, problems = self._collect(inputs)
        if problems:
            raise self._error(problems)
        paths: list[str] = []
        for inp in self.inputs:
            for path in _files_of(inp, values.get(inp.variable_name)):
                if not _is_url(path) and path not in paths:
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
        values, problems = self._collect(inputs)
        if problems:
            raise self._error(problems)
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
                    f"'{inp.display_name}': local file {_show(url)} was not uploaded"
                    for url in urls
                    if not _is_url(url)
                ]
                value = urls if inp.type == "array_files" else urls[0]
            instance[inp.variable_name] = {"value": value, "type": inp.type, "displayName": inp.display_name}
        if not_uploaded:
            raise self._error(not_uploaded)
        return instance

    def validate_instance(self, instance: Mapping[str, Any]) -> None:
        """
        Check a ``jobPayloadSchemaInstance`` a user wrote themselves.

        Values are checked by the same rules as :meth:`build`, and must already be in the form
        :meth:`build` would send (``"2025-11-09"``, not a date object), as the instance is sent as is.

        :param instance: ``{variable_name: {"value": ..., "type": ...}}``.
        :raises OpusPayloadError: listing every problem found.
        """
        if not isinstance(instance, Mapping):
            raise self._error([f"the jobPayloadSchemaInstance must be a dict, got {_describe(instance)}"])
        by_variable_name = {inp.variable_name: inp for inp in self.inputs}
        values: dict[str, Any] = {}
        malformed: set[str] = set()
        value_problems: list[str] = []
        key_problems: list[str] = []
        for key, item in instance.items():
            inp = by_variable_name.get(key)
            if inp is None:
                key_problems.append(
                    f"{_show(key)} is not a variable name of this workflow "
                    f"(variable names: {', '.join(by_variable_name)})"
                )
                continue
            name = f"'{inp.display_name}'"
            if not isinstance(item, Mapping) or "value" not in item or "type" not in item:
                malformed.add(key)
                shape = f"{{'value': ..., 'type': {inp.type!r}}}"
                value_problems.append(f"{name}: expected {shape}, got {_describe(item)}")
            elif item["type"] != inp.type:
                malformed.add(key)
                given = _show(item["type"])
                value_problems.append(f"{name}: type {given} does not match the workflow's type {inp.type!r}")
            else:
                value = values[key] = item["value"]
                if not _is_missing(inp, value):
                    sent, problems = _check_value(inp, value)
                    # The instance goes to Opus as it is, so a value build() would convert (a date
                    # object, a tuple, a Path) would not arrive as meant, or not serialize at all.
                    if not problems and sent != value:
                        want, got = _show(sent), _describe(value)
                        problems = [f"{name}: expected {want} as the instance is sent as is, got {got}"]
                    if not problems and inp.type in _FILE_TYPES:
                        problems = [
                            f"{name}: {_show(path)} is a local path, and an instance is sent as is: give a "
                            "fileUrl, or pass the path in inputs= to have it uploaded first"
                            for path in _files_of(inp, value)
                            if not _is_url(path)
                        ]
                    value_problems += problems
        # A malformed item is reported above: do not also call its input missing.
        missing = [
            f"'{inp.display_name}' is required"
            for inp in self.inputs
            if not inp.is_nullable
            and inp.variable_name not in malformed
            and _is_missing(inp, values.get(inp.variable_name))
        ]
        problems = value_problems + missing + key_problems
        if problems:
            raise self._error(problems)

    def _collect(self, inputs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """
        Resolve and check user inputs.

        Problems come in the order they are best read: bad values (in the order given), then required
        inputs missing (in schema order), then bad keys, last because their message lists every input.

        :return: the values as sent to Opus keyed by variable name, and every problem found.
        """
        if not isinstance(inputs, Mapping):
            return {}, [f"inputs must be a dict of input name to value, got {_describe(inputs)}"]
        values: dict[str, Any] = {}
        first_key: dict[str, str] = {}
        value_problems: list[str] = []
        key_problems: list[str] = []
        for key, value in inputs.items():
            inp = self._match(key)
            if isinstance(inp, str):
                key_problems.append(inp)
            elif inp.variable_name in first_key:
                key_problems.append(
                    f"'{inp.display_name}' is given more than once "
                    f"(as {_show(first_key[inp.variable_name])} and {_show(key)}): give it once"
                )
            else:
                first_key[inp.variable_name] = key
                problems: list[str] = []
                if not _is_missing(inp, value):
                    value, problems = _check_value(inp, value)
                values[inp.variable_name] = value
                value_problems += problems
        missing = [
            f"'{inp.display_name}' is required"
            for inp in self.inputs
            if not inp.is_nullable and _is_missing(inp, values.get(inp.variable_name))
        ]
        return values, value_problems + missing + key_problems

    def _match(self, key: str) -> WorkflowInput | str:
        """Return the input ``key`` names, or the problem saying why it names none."""
        for inp in self.inputs:
            if inp.variable_name == key:
                return inp
        matches = [inp for inp in self.inputs if key in (inp.id, inp.display_name)]
        if not matches and isinstance(key, str):
            folded = key.casefold()
            matches = [inp for inp in self.inputs if inp.display_name.casefold() == folded]
        if len(matches) == 1:
            return matches[0]
        if matches:
            names = ", ".join(inp.variable_name for inp in matches)
            return f"{_show(key)} matches several inputs ({names}): use the variable name"
        names = ", ".join(inp.display_name for inp in self.inputs)
        return f"{_show(key)} is not an input of this workflow (inputs: {names})"

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
    if _is_url(text):
        try:
            path = urlsplit(text).path
        except ValueError:  # such as an unclosed "[" in the host
            return f"{_show(text)} is not a valid URL"
    extension = os.path.splitext(path)[1]
    normalized = _normalize_extension(extension)
    file_type = f"file type {_show(extension)}"
    supported = _extension_list(SUPPORTED_FILE_EXTENSIONS)
    if not normalized:
        return f"{_show(text)} has no file extension (supported: {supported})"
    # The input's own list first: it is the shorter, more useful one to show.
    if allowed:
        accepted = frozenset(_normalize_extension(a) for a in allowed)
        if normalized not in accepted:
            return f"{file_type} is not allowed for this input (allowed: {_extension_list(accepted)})"
    if normalized not in SUPPORTED_FILE_EXTENSIONS:
        return f"{file_type} is not supported by Opus (supported: {supported})"
    return None


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
            return value, [f"{name}: expected a list of file URLs or local paths, got {_describe(value)}"]
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
        return value, [f"{name}: expected {_EXPECTED[inp.type]}, got {_describe(value)}"]
    return converted, []


def _convert(kind: str, value: Any) -> Any:
    """Return ``value`` as Opus takes a ``kind`` (a non-file type), or ``_INVALID``."""
    if kind == "str" and isinstance(value, str):
        return value
    # bool is an int subclass, but True is never meant as a number; NaN and infinity are not JSON.
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value if math.isfinite(value) else _INVALID
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
        return value, f"expected a file URL (http/https) or local path, got {_describe(value)}"
    return value, check_file_extension(value, allowed)


def _files_of(inp: WorkflowInput, value: Any) -> list[str]:
    """Return the files a checked value of ``inp`` holds: none for non-file inputs or None."""
    if value is None or inp.type not in _FILE_TYPES:
        return []
    return list(value) if inp.type == "array_files" else [value]


def _is_missing(inp: WorkflowInput, value: Any) -> bool:
    # An empty file list gives the workflow nothing to work on, so it does not fill a required input.
    return value is None or (inp.type == "array_files" and isinstance(value, (list, tuple)) and not value)


def _is_url(path_or_url: str) -> bool:
    return path_or_url.lower().startswith(("http://", "https://"))


def _normalize_extension(extension: Any) -> str:
    return str(extension).strip().lstrip(".").lower()


def _extension_list(extensions: frozenset[str]) -> str:
    return ", ".join(sorted(extension.upper() for extension in extensions))


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."


def _describe(value: Any) -> str:
    # A string's quotes already say what it is; other values are clearer with their type.
    return _show(value) if isinstance(value, str) else f"{type(value).__name__} {_show(value)}"
