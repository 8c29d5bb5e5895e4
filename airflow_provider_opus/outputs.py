"""What a finished Opus job produced: its outputs by name and its output files, from either results shape.

The API reference documents a job's results in two shapes, and the provider reads both:

* the **results shape** of its example: ``{"jobExecutionId", "status", "results": {"summary",
  "outputFiles", "data": {...}}}``. Each field of ``results`` is an output, and so is each field of
  ``results.data`` (which is where a workflow's named values are);
* the **schema shape** of its schema: ``{"jobResultsPayloadSchema": {<variable name>:
  WorkflowOutputVariableDto}}``, one entry per output variable, its value in ``value`` (an entry
  without ``value`` is kept whole, as Opus sent it). Today's reference returns this shape alone, its
  entries ``{value, type, displayName}``.

Every output has a **variable name** of its own, unique in the job: the entry's ``variable_name`` or
key, the field's name in ``results.data`` or ``results``. A field of ``results`` that has the name of a
field of ``results.data`` is ``results.<name>`` (the data field, the workflow's own variable, keeps the
name); an empty name becomes ``unnamed_output_<n>``; any other repeat is named by where it is
(``jobResultsPayloadSchema.<key>``). Each output also has a **display name**: the entry's own
``display_name`` or ``displayName``, else the one the workflow's ``jobResultsPayloadSchema`` gives the
variable (``GET /workflow/{id}``), else the variable name.

Outputs are keyed by display name, except where a display name would not name one output alone
(:func:`output_keys`): two outputs that share one, or one that is another output's variable name. Those
are keyed by variable name, and :attr:`JobOutputs.warnings` says so. :func:`output_value` finds an output
by variable name (always) or by a display name that names one output (an ambiguous one is an error).
The output files are ``outputFiles`` and the values of file-typed outputs (``file``, ``array_files``, in
any letter case). :attr:`JobOutputs.raw` is the results object as it came; a body in neither shape is
an :class:`~airflow_provider_opus.exceptions.OpusResponseError`, never an empty result.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_opus.exceptions import OpusError, OpusResponseError, describe_value

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The two fields that may hold a job's results, by shape.
RESULTS_FIELDS: dict[str, Literal["results", "schema"]] = {"results": "results", "jobResultsPayloadSchema": "schema"}
#: Output types whose values are file URLs: one URL, or a list of them.
FILE_OUTPUT_TYPES = frozenset({"file", "array_files"})
#: The field of the results shape that lists the job's files.
OUTPUT_FILES_FIELD = "outputFiles"
#: The variable name given to an output whose name is empty: ``unnamed_output_1``, ``unnamed_output_2``, ...
UNNAMED_OUTPUT = "unnamed_output_{}"


@dataclass(frozen=True)
class JobOutputs:
    """
    A finished job's results, read from either shape.

    :param shape: ``"results"`` or ``"schema"`` (see the module's docstring).
    :param raw: the results object exactly as Opus sent it.
    :param outputs: each output's value, keyed by display name, or by variable name where the display
        name would not name it alone (:func:`output_keys`).
    :param names: each output's variable name to its display name.
    :param output_files: the URLs of the job's files, in order, without repeats.
    :param warnings: what a reader should know about the names: outputs renamed or keyed by variable name.
    """

    shape: Literal["results", "schema"]
    raw: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    output_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_xcom(self, *, include_raw: bool = False) -> dict[str, Any]:
        """
        Return the JSON-ready fields a results task returns: shape, outputs, names, files (and the raw results).

        :param include_raw: also return ``results``, the results exactly as Opus sent them: a second copy
            of every value.
        """
        value: dict[str, Any] = {
            "results_shape": self.shape,
            "outputs": self.outputs,
            "output_names": self.names,
            "output_files": self.output_files,
        }
        if include_raw:
            value["results"] = self.raw
        return value


class OpusOutputNotFoundError(OpusError, KeyError):
    """A job has no output of the name asked for; the message lists the names it has."""

    def __str__(self) -> str:
        # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


class OpusOutputAmbiguousError(OpusOutputNotFoundError):
    """A display name asked for names several outputs; the message lists their variable names."""


def job_outputs_from(body: Mapping[str, Any], path: str, output_schema: Mapping[str, Any] | None = None) -> JobOutputs:
    """
    Read a results response of either shape.

    :param body: the parsed ``GET /job/{id}/results`` response of a completed job.
    :param path: the path called, for errors.
    :param output_schema: the workflow's ``jobResultsPayloadSchema``, for display names and types.
    :raises OpusResponseError: the body holds neither ``results`` nor ``jobResultsPayloadSchema`` as an
        object, or a file field holds something other than URL strings.
    """
    schema = _variables(output_schema)
    for name, shape in RESULTS_FIELDS.items():
        raw = body.get(name)
        if raw is None:
            continue
        if not isinstance(raw, dict):
            raise OpusResponseError("GET", path, f"{name} is {describe_value(raw)}, expected an object")
        reader = _read_results_shape if shape == "results" else _read_schema_shape
        return reader(raw, path, schema)
    fields = ", ".join(sorted(map(str, body))) or "none"
    raise OpusResponseError(
        "GET",
        path,
        f"the results of a completed job hold neither results nor jobResultsPayloadSchema (fields: {fields})",
    )


def output_schema_of(workflow_details: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """
    Return a workflow's ``jobResultsPayloadSchema``, or None when the details have none that is an object.

    :param workflow_details: what ``GET /workflow/{id}`` returned.
    """
    schema = (workflow_details or {}).get("jobResultsPayloadSchema")
    return schema if isinstance(schema, dict) else None


def output_keys(names: Mapping[str, str]) -> dict[str, str]:
    """
    Return the key of each output in ``outputs``: its display name where that names it alone, else its variable name.

    A display name is used when no other output has it and it is no other output's variable name, so
    the keys are unique and a variable name never means two outputs.

    :param names: each output's variable name to its display name.
    """
    shared = Counter(names.values())
    return {
        variable: display if display == variable or (shared[display] == 1 and display not in names) else variable
        for variable, display in names.items()
    }


def output_value(results: Mapping[str, Any], name: str) -> Any:
    """
    Return one output of a results task's return value, by variable name or display name.

    A variable name always finds its output. A display name finds the one output that has it; one that
    several outputs share is an error naming their variable names.

    :param results: what :class:`~airflow_provider_opus.operators.results.OpusGetJobResultsOperator`
        returned (its XCom).
    :param name: the output's variable name or its display name (as in the Opus app).
    :raises OpusOutputAmbiguousError: several outputs have that display name.
    :raises OpusOutputNotFoundError: no output has that name; the message lists those there are.
    """
    outputs = results.get("outputs")
    if not isinstance(outputs, dict):
        raise OpusError("output_value() reads the return value of OpusGetJobResultsOperator, which has outputs")
    names = results.get("output_names")
    names = names if isinstance(names, dict) else {}
    keys = output_keys(names)
    if keys.get(name) in outputs:
        return outputs[keys[name]]
    matches = [variable for variable, display in names.items() if display == name]
    if len(matches) > 1:
        raise OpusOutputAmbiguousError(
            f"The Opus job has {len(matches)} outputs named {name!r} (variable names: "
            f"{', '.join(map(repr, matches))}): ask for one by its variable name"
        )
    if matches and keys.get(matches[0]) in outputs:
        return outputs[keys[matches[0]]]
    if name in outputs:
        return outputs[name]
    known = ", ".join(repr(output) for output in outputs) or "none"
    raise OpusOutputNotFoundError(f"The Opus job has no output named {name!r}; its outputs are: {known}")


@dataclass
class _Collector:
    path: str
    schema: dict[str, dict[str, Any]]
    values: dict[str, Any] = field(default_factory=dict)  # by variable name
    names: dict[str, str] = field(default_factory=dict)
    files: dict[str, None] = field(default_factory=dict)  # an ordered set
    warnings: list[str] = field(default_factory=list)
    unnamed: int = 0

    def add(
        self,
        name: str,
        value: Any,
        entry: Mapping[str, Any] | None = None,
        where: str = "",
        *,
        shadowed: bool = False,
    ) -> None:
        """
        Add one output.

        :param name: its name in the results (may be empty, or repeat another's).
        :param entry: its entry in the schema shape, with its display name and type.
        :param where: where its value is in the results, for errors (and, without ``.value``, as the name of a repeat).
        :param shadowed: a field of ``results`` that a field of ``results.data`` has the name of: it is named
            ``results.<name>``, and the workflow's schema (which describes the data field) does not describe it.
        """
        declared = {} if shadowed else self.schema.get(name, {})
        variable = self._unique(f"results.{name}" if shadowed else name, where.removesuffix(".value"))
        display = _display_name(entry or {}) or _display_name(declared) or variable
        kind = (_text((entry or {}).get("type")) or _text(declared.get("type")) or "").lower()
        self.values[variable] = value
        self.names[variable] = display
        if name == OUTPUT_FILES_FIELD:
            self.add_files(value, where, "a list of URL strings")
        elif kind in FILE_OUTPUT_TYPES:
            self.add_files([value] if isinstance(value, str) else value, where, "a URL string or a list of them")

    def _unique(self, variable: str, place: str) -> str:
        """Return a variable name no other output has: the name, a generated one for an empty name, or its place."""
        if not variable.strip():
            while True:
                self.unnamed += 1
                candidate = UNNAMED_OUTPUT.format(self.unnamed)
                if candidate not in self.values:
                    break
            self.warnings.append(f"The output at {place} has an empty name: it is named {candidate!r}")
            return candidate
        if variable not in self.values:
            return variable
        candidate, number = place, 1
        while candidate in self.values:
            number += 1
            candidate = f"{place}#{number}"
        self.warnings.append(f"Two outputs have the variable name {variable!r}: the one at {place} is {candidate!r}")
        return candidate

    def add_files(self, urls: Any, where: str, expected: str) -> None:
        if urls is None:
            return
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            raise OpusResponseError("GET", self.path, f"{where} is {describe_value(urls)}, expected {expected}")
        self.files.update(dict.fromkeys(urls))

    def result(self, shape: Literal["results", "schema"], raw: dict[str, Any]) -> JobOutputs:
        keys = output_keys(self.names)
        shared = Counter(self.names.values())
        for display, count in shared.items():
            if count > 1:
                variables = ", ".join(repr(v) for v, d in self.names.items() if d == display)
                self.warnings.append(
                    f"{count} outputs have the display name {display!r} ({variables}): each is keyed by its variable "
                    "name, and output_value() needs the variable name for them"
                )
        for variable, display in self.names.items():
            if shared[display] == 1 and keys[variable] != display:
                self.warnings.append(
                    f"The output {variable!r} has the display name {display!r}, which is another output's variable "
                    f"name: it is keyed by its variable name {variable!r}"
                )
        outputs = {keys[variable]: value for variable, value in self.values.items()}
        return JobOutputs(shape, raw, outputs, dict(self.names), list(self.files), self.warnings)


def _read_results_shape(raw: dict[str, Any], path: str, schema: dict[str, dict[str, Any]]) -> JobOutputs:
    collector = _Collector(path, schema)
    data = raw.get("data")
    data_names = {str(name) for name in data} if isinstance(data, dict) else set()
    for variable, value in raw.items():
        if variable == "data" and isinstance(value, dict):
            for name, item in value.items():
                collector.add(str(name), item, where=f"results.data.{name}")
        elif variable in data_names:
            # The data field is the workflow's variable and keeps the name; this one is named by its place.
            collector.warnings.append(
                f"results.{variable} and results.data.{variable} have one name: the first is the output "
                f"'results.{variable}', the second {variable!r}"
            )
            collector.add(variable, value, where=f"results.{variable}", shadowed=True)
        else:
            collector.add(variable, value, where=f"results.{variable}")
    return collector.result("results", raw)


def _read_schema_shape(raw: dict[str, Any], path: str, schema: dict[str, dict[str, Any]]) -> JobOutputs:
    collector = _Collector(path, schema)
    for variable, entry in raw.items():
        where = f"jobResultsPayloadSchema.{variable}"
        if isinstance(entry, dict):
            name = _text(entry.get("variable_name")) or variable
            collector.add(name, entry.get("value", entry), entry, f"{where}.value")
        else:
            collector.add(variable, entry, where=where)
    return collector.result("schema", raw)


def _variables(output_schema: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Return the workflow's output variables that are objects, keyed by variable name."""
    variables: dict[str, dict[str, Any]] = {}
    for key, entry in (output_schema or {}).items():
        if isinstance(entry, dict):
            variables[_text(entry.get("variable_name")) or str(key)] = entry
    return variables


def _display_name(entry: Mapping[str, Any]) -> str | None:
    """Return an entry's display name: ``display_name`` in the workflow's schema, ``displayName`` in today's results."""
    return _text(entry.get("display_name")) or _text(entry.get("displayName"))


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
