"""What a finished Opus job produced: its outputs by name and its output files, from either results shape.

The API reference documents a job's results in two shapes, and the provider reads both:

* the **results shape** of its example: ``{"jobExecutionId", "status", "results": {"summary",
  "outputFiles", "data": {...}}}``. Each field of ``results`` is an output, and so is each field of
  ``results.data`` (which is where a workflow's named values are);
* the **schema shape** of its schema: ``{"jobResultsPayloadSchema": {<variable name>:
  WorkflowOutputVariableDto}}``, one entry per output variable, its value in ``value`` (an entry
  without ``value`` is kept whole, as Opus sent it). Today's reference returns this shape alone, its
  entries ``{value, type, displayName}``.

Outputs are keyed by display name: the entry's own ``display_name`` or ``displayName``, else the one the workflow's
``jobResultsPayloadSchema`` gives the variable (``GET /workflow/{id}``), else the variable name. The
output files are ``outputFiles`` and the values of file-typed outputs (``file``, ``array_files``, in any
letter case).
Nothing Opus sent is dropped: :attr:`JobOutputs.raw` is the results object as it came; a body in
neither shape is an :class:`~airflow_provider_opus.exceptions.OpusResponseError`, never an empty result.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class JobOutputs:
    """
    A finished job's results, read from either shape.

    :param shape: ``"results"`` or ``"schema"`` (see the module's docstring).
    :param raw: the results object exactly as Opus sent it.
    :param outputs: each output's value, keyed by display name.
    :param names: each output's variable name to its display name.
    :param output_files: the URLs of the job's files, in order, without repeats.
    """

    shape: Literal["results", "schema"]
    raw: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    output_files: list[str] = field(default_factory=list)

    def as_xcom(self) -> dict[str, Any]:
        """Return the JSON-ready fields a results task returns: results, shape, outputs, names, files."""
        return {
            "results": self.raw,
            "results_shape": self.shape,
            "outputs": self.outputs,
            "output_names": self.names,
            "output_files": self.output_files,
        }


class OpusOutputNotFoundError(OpusError, KeyError):
    """A job has no output of the name asked for; the message lists the names it has."""

    def __str__(self) -> str:
        # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


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


def output_value(results: Mapping[str, Any], name: str) -> Any:
    """
    Return one output of a results task's return value, by display name or variable name.

    :param results: what :class:`~airflow_provider_opus.operators.results.OpusGetJobResultsOperator`
        returned (its XCom).
    :param name: the output's display name (as in the Opus app) or its variable name.
    :raises OpusOutputNotFoundError: no output has that name; the message lists those there are.
    """
    outputs = results.get("outputs")
    if not isinstance(outputs, dict):
        raise OpusError("output_value() reads the return value of OpusGetJobResultsOperator, which has outputs")
    if name in outputs:
        return outputs[name]
    display = (results.get("output_names") or {}).get(name)
    if display in outputs:
        return outputs[display]
    known = ", ".join(repr(output) for output in outputs) or "none"
    raise OpusOutputNotFoundError(f"The Opus job has no output named {name!r}; its outputs are: {known}")


@dataclass
class _Collector:
    path: str
    schema: dict[str, dict[str, Any]]
    outputs: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    files: dict[str, None] = field(default_factory=dict)  # an ordered set

    def add(self, variable: str, value: Any, entry: Mapping[str, Any] | None = None, where: str = "") -> None:
        declared = self.schema.get(variable, {})
        display = _display_name(entry or {}) or _display_name(declared) or variable
        kind = (_text((entry or {}).get("type")) or _text(declared.get("type")) or "").lower()
        # A name seen twice keeps its first value; both stay in the raw results.
        self.outputs.setdefault(display, value)
        self.names.setdefault(variable, display)
        if variable == OUTPUT_FILES_FIELD:
            self.add_files(value, where, "a list of URL strings")
        elif kind in FILE_OUTPUT_TYPES:
            self.add_files([value] if isinstance(value, str) else value, where, "a URL string or a list of them")

    def add_files(self, urls: Any, where: str, expected: str) -> None:
        if urls is None:
            return
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            raise OpusResponseError("GET", self.path, f"{where} is {describe_value(urls)}, expected {expected}")
        self.files.update(dict.fromkeys(urls))

    def result(self, shape: Literal["results", "schema"], raw: dict[str, Any]) -> JobOutputs:
        return JobOutputs(shape, raw, self.outputs, self.names, list(self.files))


def _read_results_shape(raw: dict[str, Any], path: str, schema: dict[str, dict[str, Any]]) -> JobOutputs:
    collector = _Collector(path, schema)
    for variable, value in raw.items():
        if variable == "data" and isinstance(value, dict):
            for name, item in value.items():
                collector.add(str(name), item, where=f"results.data.{name}")
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
