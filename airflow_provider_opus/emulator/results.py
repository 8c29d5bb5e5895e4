"""
What ``GET /job/{id}/results`` carries, in either generation: built from a job and its workflow.

Both generations carry the same outputs: a summary, the output files, the workflow's results data and
``inputs_received`` (the number of inputs the job was given).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.emulator.details import output_schema
from airflow_provider_opus.emulator.output_files import output_file_path

if TYPE_CHECKING:
    from airflow_provider_opus.emulator.jobs import Job
    from airflow_provider_opus.emulator.workflows import Workflow

SUMMARY = "Job executed successfully."
#: The variable and display name of a completed job's first output file in the current generation; the
#: others get ``_<n>`` and `` <n>``.
FILE_OUTPUT = ("generated_report", "Generated Report")


def output_files(job: Job, storage_url: str) -> list[str]:
    """Return the URLs of a job's output files on the storage listener."""
    return [f"{storage_url}{output_file_path(job.job_id, n)}" for n in range(1, job.workflow.output_files + 1)]


def legacy_results(job: Job, shape: str, storage_url: str, now: float) -> dict[str, Any]:
    """
    Build the legacy generation's results body, in the results shape in force for the job's workflow.

    :param job: the job.
    :param shape: ``"results"`` or ``"schema"``.
    :param storage_url: the storage listener's URL.
    :param now: the time to describe the job at.
    :return: ``{"jobExecutionId", "status", "results": {"summary", "outputFiles", "data"}}``, or in the schema
        shape ``{"jobExecutionId", "status", "jobResultsPayloadSchema": {<variable>: {"variable_name",
        "display_name", "type", "description", "value"}}}``; ``results`` (or ``jobResultsPayloadSchema``) is
        empty unless the job has results (see :meth:`Job.has_results`).
    """
    workflow = job.workflow
    completed = job.has_results(now)
    inputs_received = len(job.instance)
    files = output_files(job, storage_url)
    body: dict[str, Any] = {"jobExecutionId": job.job_id, "status": job.status(now)}
    if shape == "schema":
        outputs: dict[str, Any] = {}
        if completed:
            # Described by the workflow's jobResultsPayloadSchema where it names the output.
            derived = output_schema(workflow.results_data)
            values = {
                "summary": SUMMARY,
                "outputFiles": files,
                **workflow.results_data,
                "inputs_received": inputs_received,
            }
            for name, value in values.items():
                outputs[name] = {**derived[name], **workflow.outputs.get(name, {}), "value": copy.deepcopy(value)}
        body["jobResultsPayloadSchema"] = outputs
        return body
    results: dict[str, Any] = {}
    if completed:
        data = {**copy.deepcopy(workflow.results_data), "inputs_received": inputs_received}
        results = {"summary": SUMMARY, "outputFiles": files, "data": data}
    body["results"] = results
    return body


def current_output_schema(workflow: Workflow) -> dict[str, dict[str, Any]]:
    """
    Describe the outputs a completed job of the workflow has in the current generation.

    The entries are shaped like the legacy ones (``variable_name``, ``display_name``, ``type``,
    ``description``), one per output of :func:`current_outputs`: the workflow's own where it names the
    output, else derived.
    """
    described = {**output_schema(workflow.results_data), **workflow.outputs}
    schema: dict[str, dict[str, Any]] = {"summary": copy.deepcopy(described["summary"])}
    name, label = FILE_OUTPUT
    for index in range(1, workflow.output_files + 1):
        variable = name if index == 1 else f"{name}_{index}"
        display = label if index == 1 else f"{label} {index}"
        description = "A document the job generated."
        schema[variable] = {
            "variable_name": variable,
            "display_name": display,
            "type": "file",
            "description": description,
        }
    for key in (*workflow.results_data, "inputs_received"):
        schema[key] = copy.deepcopy(described[key])
    return schema


def current_outputs(job: Job, storage_url: str) -> dict[str, Any]:
    """
    Build a completed job's outputs in the current generation: ``{<variable>: {"value", "type", "displayName"}}``.

    The summary, one ``file`` output per output file (``generated_report``, ``generated_report_2``, ...),
    the results data and ``inputs_received``; display names and types come from the workflow's
    jobResultsPayloadSchema where it names the output.
    """
    workflow = job.workflow
    described = {**output_schema(workflow.results_data), **workflow.outputs}
    outputs: dict[str, Any] = {"summary": {"value": SUMMARY, "type": "str", "displayName": "Summary"}}
    name, label = FILE_OUTPUT
    for index, url in enumerate(output_files(job, storage_url), start=1):
        suffix = "" if index == 1 else f"_{index}"
        outputs[f"{name}{suffix}"] = {
            "value": url,
            "type": "file",
            "displayName": label if index == 1 else f"{label} {index}",
        }
    for key, value in {**workflow.results_data, "inputs_received": len(job.instance)}.items():
        entry = described.get(key, {})
        outputs[key] = {
            "value": copy.deepcopy(value),
            "type": entry.get("type", "object"),
            "displayName": entry.get("display_name", key),
        }
    return outputs
