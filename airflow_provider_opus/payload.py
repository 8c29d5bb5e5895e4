"""
Build and validate the ``jobPayloadSchemaInstance`` that ``POST /job/execute`` takes.

A workflow describes its inputs in the ``jobPayloadSchema`` of ``GET /workflow/{id}``: one entry per
input, keyed by its variable name, with an ``id``, a ``display_name``, a ``type`` and ``is_nullable``.
DAG authors name inputs however suits them (display name, variable name or id) and give plain Python
values. This module resolves the names, has each value checked and converted by its
:class:`~airflow_provider_opus.workflow_inputs.WorkflowInput`, and reports every problem in one
:class:`~airflow_provider_opus.exceptions.OpusPayloadError`, so they can all be fixed in one go.

It does no I/O, so operators can validate inputs before initiating a job or uploading any file.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_opus.exceptions import OpusPayloadError, describe_value, show_value
from airflow_provider_opus.files import is_url
from airflow_provider_opus.json_values import json_problem
from airflow_provider_opus.workflow_inputs import WorkflowInput

__all__ = ["JobPayloadSchema", "WorkflowInput", "build_job_payload"]


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
    :raises OpusWorkflowSchemaError: an entry of the schema cannot be read (it names the entry).
    """

    def __init__(self, schema: Mapping[str, Any], workflow_id: str = "") -> None:
        self.workflow_id = workflow_id
        path = f"/workflow/{workflow_id}" if workflow_id else "/workflow"
        self.inputs: list[WorkflowInput] = [
            WorkflowInput.from_schema_entry(str(variable_name), entry, path) for variable_name, entry in schema.items()
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
            for path in inp.files_in(values.get(inp.variable_name)):
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
        :return: ``{variable_name: {"value": ..., "type": ..., "displayName": ...}}`` in schema order (a v2
            ``array`` also with its ``typeDefinition``).
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
            if inp.takes_files and value is not None:
                urls = [uploaded.get(path, path) for path in inp.files_in(value)]
                not_uploaded += [
                    f"{inp.quoted_name}: local file {show_value(url)} was not uploaded"
                    for url in urls
                    if not is_url(url)
                ]
                value = urls[0] if inp.type == "file" else urls
            instance[inp.variable_name] = inp.instance_item(value)
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
                files.update(dict.fromkeys(f for f in inp.files_in(item.get("value")) if isinstance(f, str)))
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
                shape_problems[key] = f"{inp.quoted_name}: expected {shape}, got {describe_value(item)}"
            elif item["type"] != inp.type:
                given_type = show_value(item["type"])
                shape_problems[key] = (
                    f"{inp.quoted_name}: type {given_type} does not match the workflow's type {inp.type!r}"
                )
            elif inp.is_file_array and item.get("typeDefinition") != inp.type_definition:
                shape_problems[key] = (
                    f"{inp.quoted_name}: a list of files needs 'typeDefinition': {inp.type_definition!r} "
                    "as the workflow declares it, or Opus passes the URLs on as text"
                )
            else:
                given[key] = item["value"]
                # The value is checked below; the item's other fields are sent as they are too.
                others = {field: part for field, part in item.items() if field != "value"}
                if problem := json_problem(inp.quoted_name, others):
                    shape_problems[key] = problem
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
                    f"{inp.quoted_name} is given more than once "
                    f"(as {show_value(first_key[inp.variable_name])} and {show_value(key)}): give it once"
                )
            else:
                first_key[inp.variable_name] = key
                if not inp.is_missing(value):
                    value, problems = inp.check(value)
                    if problems:
                        checked.value_problems[inp.variable_name] = problems
                checked.values[inp.variable_name] = value
        checked.missing = [
            inp for inp in self.inputs if not inp.is_nullable and inp.is_missing(checked.values.get(inp.variable_name))
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


def _same_text(a: Any, b: str) -> bool:
    """Tell whether ``a`` is the text ``b``, in any Unicode normal form."""
    return a == b or (isinstance(a, str) and unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b))


def _caseless(text: str) -> str:
    """Return ``text`` folded for caseless matching in any normal form (Unicode's canonical caseless match)."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())


def _required(inp: WorkflowInput) -> str:
    return f"{inp.quoted_name} is required"


def _as_is_problems(inp: WorkflowInput, given: Any, sent: Any) -> list[str]:
    """Return why a valid value of a hand-written instance would not arrive as meant, sent as is."""
    name = inp.quoted_name
    # build() would convert a date object, a tuple or a Path; an instance is not converted.
    if sent != given:
        return [f"{name}: expected {show_value(sent)} as the instance is sent as is, got {describe_value(given)}"]
    return [
        f"{name}: {show_value(path)} is a local path, and an instance is sent as is: give a "
        "fileUrl, or pass the path in inputs= to have it uploaded first"
        for path in inp.files_in(given)
        if not is_url(path)
    ]
