"""
OpenLineage for the provider's tasks: which files and workflow a task read, which files it produced.

Each Opus task (the operators and the sensor) records :class:`LineageFacts` while it runs. When
``apache-airflow-providers-openlineage`` is installed and configured, its listener asks the task for
``get_openlineage_facets_on_complete`` or ``get_openlineage_facets_on_failure`` (defined once, on
:class:`~airflow_provider_opus.operators.base.OpusBaseOperator`), which turn the facts into an
``OperatorLineage`` with :func:`operator_lineage`.

Nothing here imports OpenLineage when the module is imported: the classes of OpenLineage are imported
inside the functions the listener calls, so without the OpenLineage provider the tasks run exactly as
they do with it, and never import it.

Dataset naming follows the OpenLineage naming conventions
(https://openlineage.io/docs/spec/naming):

* an http(s) file URL: namespace ``scheme://host[:port]``, name its path (the query, which may hold a
  signature, and any user info are left out);
* a local file: namespace ``file``, name its absolute path, as Airflow's own file assets and
  OpenLineage's ``LocalFileSystem`` name it;
* the workflow a job ran: namespace ``opus://<API host>[:port]`` (from the connection's API base URL),
  name ``workflows/<workflow id>``. A workflow is what a job reads besides its files (its steps and
  rules), and it has no URL in any other scheme, so it gets a namespace of its own.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_opus.api import GET_JOB_RESULTS, checked_job_id
from airflow_provider_opus.exceptions import redact
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.outputs import job_outputs_from

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow.providers.common.compat.openlineage.facet import Dataset, RunFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The ``source`` of the ExternalQueryRunFacet: the system whose job id it names.
EXTERNAL_QUERY_SOURCE = "opus"
#: The run facet key of :func:`opus_job_run_facet_class`'s facet.
OPUS_JOB_FACET = "opus_job"
#: Seconds a read that only lineage needs may take (one attempt, no retries).
LINEAGE_READ_TIMEOUT = 4.0
_USER_INFO = re.compile(r"//[^/@]*@")


@dataclass
class LineageFacts:
    """
    What a task learned while it ran that lineage reports: plain data, so it can cross a deferral.

    :param api_url: the connection's API base URL, whose host names the workflow's namespace.
    :param workflow_id: the workflow the job ran, when the task knows it.
    :param workflow_version: the workflow version the job was pinned to, when it was.
    :param workflow_name: the workflow's name, from its details.
    :param workflow_description: the workflow's description, from its details.
    :param workflow_read: the workflow's details were read (its name and description may still be None).
    :param job_execution_id: the job the task started, waited for or read.
    :param job_status: the job's last status seen.
    :param job_completed: the job ended ``COMPLETED``, so its output files are there to read.
    :param input_files: the files the task read: local paths and fileUrls.
    :param output_files: the files the task produced (fileUrls of uploads, a job's output files);
        None when not read yet.
    :param failure: what went wrong, with the job's last audit entries when the job failed.
    :param audit_tail: the job's last audit entries, when it failed.
    """

    api_url: str | None = None
    workflow_id: str | None = None
    workflow_version: str | None = None
    workflow_name: str | None = None
    workflow_description: str | None = None
    workflow_read: bool = False
    job_execution_id: str | None = None
    job_status: str | None = None
    job_completed: bool = False
    input_files: list[str] = field(default_factory=list)
    output_files: list[str] | None = None
    failure: str | None = None
    audit_tail: list[dict] = field(default_factory=list)

    def record_workflow(self, workflow_id: str, details: Mapping[str, Any] | None = None) -> None:
        """
        Record the workflow, and its name and description from its details (``GET /workflow/{id}``).

        :param workflow_id: the workflow.
        :param details: its details, when read.
        """
        self.workflow_id = workflow_id
        if details is not None:
            self.workflow_read = True
            self.workflow_name = _text(details.get("name"))
            self.workflow_description = _text(details.get("description"))

    def add_inputs(self, files: list[str]) -> None:
        """
        Record files the task read, each once, in order.

        :param files: local paths or fileUrls.
        """
        self.input_files += [path for path in dict.fromkeys(files) if path not in self.input_files]

    def record_failure(self, error: BaseException | None) -> None:
        """
        Record why the task failed; a failed job's error carries its id, status and last audit entries.

        :param error: the error the task failed with, if known.
        """
        if error is None:
            return
        self.failure = redact(str(error))  # any error, the provider's or a library's: no key, credentials or query
        # OpusJobFailedError's fields, read by name: the exception module need not be imported for lineage.
        job_execution_id = getattr(error, "job_execution_id", None)
        if isinstance(job_execution_id, str) and job_execution_id:
            self.job_execution_id = job_execution_id
        status = getattr(error, "status", None)
        if isinstance(status, str):
            self.job_status = status
        tail = getattr(error, "audit_tail", None)
        if isinstance(tail, list):
            self.audit_tail = [entry for entry in tail if isinstance(entry, dict)]

    def to_dict(self) -> dict[str, Any]:
        """Return the facts as JSON-ready data, to carry them across a deferral."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LineageFacts:
        """
        Rebuild facts from :meth:`to_dict`; unknown keys (from another provider version) are left out.

        :param data: the facts as data, or None for none.
        """
        if not isinstance(data, dict):
            return cls()
        names = {item.name for item in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def read_missing_facts(facts: LineageFacts, opus_conn_id: str) -> None:
    """
    Read what lineage reports but the task did not need: the workflow's details, a completed job's output files.

    Only GETs, each only when the fact is missing, each tried once for at most
    :data:`LINEAGE_READ_TIMEOUT` seconds: the listener drops the whole event when its extraction takes
    longer than ``[openlineage] execution_timeout`` (10 s by default). A failure to read is logged,
    never raised: lineage is reported with what is known, and never fails a task.

    :param facts: the facts to complete, in place.
    :param opus_conn_id: the task's connection.
    """
    hook = OpusHook(opus_conn_id, timeout=LINEAGE_READ_TIMEOUT, retry_limit=0)
    if not facts.api_url:
        facts.api_url = _best_effort("the Opus connection", lambda: hook.settings.base_url)
    workflow_id, job_execution_id = facts.workflow_id, facts.job_execution_id
    if workflow_id and not facts.workflow_read:
        details = _best_effort(f"Opus workflow {workflow_id}", lambda: hook.get_workflow(workflow_id))
        if details is not None:
            facts.record_workflow(workflow_id, details)
    if facts.job_completed and facts.output_files is None and job_execution_id:
        path = GET_JOB_RESULTS.path(**checked_job_id(job_execution_id))
        facts.output_files = _best_effort(
            f"the output files of Opus job {job_execution_id}",
            lambda: job_outputs_from(hook.get_job_results(job_execution_id), path).output_files,
        )


def _best_effort(what: str, read: Callable[[], T]) -> T | None:
    """Return what ``read`` reads, or None after logging why it could not: lineage never fails a task."""
    try:
        return read()
    except Exception as exc:  # any failure: the rest of the lineage is still reported
        log.warning("OpenLineage: could not read %s; reporting what is known: %s", what, exc)
        return None


def task_error(task_instance: Any) -> BaseException | None:
    """
    Return the error a task failed with, as Airflow's task runner left it in the task's context for listeners.

    :param task_instance: the failed task instance.
    :return: the error, or None when it is not there to read.
    """
    try:
        error = task_instance.get_template_context().get("exception")
    except Exception:  # no context to read: the failure is then reported without its message
        return None
    return error if isinstance(error, BaseException) else None


def operator_lineage(facts: LineageFacts) -> OperatorLineage:
    """
    Return the OpenLineage view of a task's facts: its input and output datasets, job and run facets.

    Inputs are the workflow (when known) and the files read; outputs are the files produced. The job
    facets hold the workflow's documentation; the run facets the job's id (the standard
    ``externalQuery`` facet, and ``opus_job`` with the workflow id too) and, for a failure, an
    ``errorMessage`` with the job's last audit entries.

    :param facts: what the task recorded.
    """
    from airflow.providers.common.compat.openlineage.facet import (
        ErrorMessageRunFacet,
        ExternalQueryRunFacet,
        InputDataset,
        OutputDataset,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.facet_v2 import documentation_job

    # Each dataset on its own: a location that cannot be named (a URL that does not parse) is left out
    # with a warning, and never takes the task's other datasets with it.
    inputs: list[Dataset] = []
    if facts.workflow_id and facts.api_url:
        workflow_id = facts.workflow_id
        named = _named(f"the workflow {workflow_id}", lambda: workflow_dataset_name(str(facts.api_url), workflow_id))
        inputs += [InputDataset(*named)] if named else []
    inputs += [InputDataset(*named) for path in facts.input_files if (named := _file_named(path))]
    outputs: list[Dataset] = [OutputDataset(*named) for url in facts.output_files or [] if (named := _file_named(url))]

    job_facets = {}
    documentation = _workflow_documentation(facts)
    if documentation:
        job_facets["documentation"] = documentation_job.DocumentationJobFacet(
            description=documentation, contentType="text/plain"
        )

    run_facets: dict[str, RunFacet] = {}
    if facts.job_execution_id:
        run_facets["externalQuery"] = ExternalQueryRunFacet(
            externalQueryId=facts.job_execution_id, source=EXTERNAL_QUERY_SOURCE
        )
    if facts.job_execution_id or facts.workflow_id:
        run_facets[OPUS_JOB_FACET] = opus_job_run_facet_class()(
            jobExecutionId=facts.job_execution_id,
            workflowId=facts.workflow_id,
            workflowVersion=facts.workflow_version,
            workflowName=facts.workflow_name,
            status=facts.job_status,
            auditTail=facts.audit_tail or None,
        )
    if facts.failure:
        run_facets["errorMessage"] = ErrorMessageRunFacet(message=facts.failure, programmingLanguage="python")
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets=run_facets, job_facets=job_facets)


def _named(what: str, name: Callable[[], tuple[str, str]]) -> tuple[str, str] | None:
    """Return a dataset's namespace and name, or None after a warning when they cannot be made."""
    try:
        return name()
    except ValueError as exc:  # urlsplit: "Invalid IPv6 URL", a port out of range, ...
        log.warning("OpenLineage: %s is left out of the lineage: it cannot be named as a dataset (%s)", what, exc)
        return None


def _file_named(location: str) -> tuple[str, str] | None:
    return _named(f"the file {_shown_location(location)}", lambda: file_dataset_name(location))


def _shown_location(location: str) -> str:
    """Return a location for a log line: without user info (credentials) or what follows ``?`` (a signature)."""
    return _USER_INFO.sub("//", location.partition("?")[0])


@functools.cache
def opus_job_run_facet_class() -> Callable[..., RunFacet]:
    """
    Return the ``opus_job`` run facet class: the job's and the workflow's ids, and how the job ended.

    The standard ``externalQuery`` facet names the job but has no room for the workflow, so this
    custom facet carries both, defined as the OpenLineage provider defines its own (an attrs class
    on ``RunFacet``). Made on first use, so that OpenLineage is imported only when lineage is asked for.
    """
    from attrs import define
    from openlineage.client.facet_v2 import RunFacet

    @define
    class OpusJobRunFacet(RunFacet):
        """
        The Opus job a task ran, waited for or read.

        :param jobExecutionId: the job's id.
        :param workflowId: the workflow it ran, when known.
        :param workflowVersion: the workflow version the job was pinned to, when it was.
        :param workflowName: the workflow's name, when known.
        :param status: the job's last status seen.
        :param auditTail: the job's last audit entries, when it failed.
        """

        # camelCase, as the fields of OpenLineage's own facets
        jobExecutionId: str | None = None
        workflowId: str | None = None
        workflowVersion: str | None = None
        workflowName: str | None = None
        status: str | None = None
        auditTail: list[dict[str, Any]] | None = None

        _additional_skip_redact = ["jobExecutionId", "workflowId", "workflowVersion", "status"]

    return OpusJobRunFacet


def workflow_dataset_name(api_url: str, workflow_id: str) -> tuple[str, str]:
    """
    Return the namespace and name of a workflow's dataset: ``opus://<API host>``, ``workflows/<id>``.

    :param api_url: the connection's API base URL.
    :param workflow_id: the workflow.
    """
    return f"opus://{_authority(urlsplit(api_url)) or api_url}", f"workflows/{workflow_id}"


def file_dataset_name(location: str) -> tuple[str, str]:
    """
    Return the namespace and name of a file's dataset: ``scheme://authority`` and path, or ``file`` and a local path.

    :param location: a fileUrl (or other URL) or a local path.
    """
    parts = urlsplit(location)
    if parts.scheme == "file":
        return "file", parts.path
    # A one-letter scheme is a Windows drive ("C:\\..."), not a URL.
    if len(parts.scheme) > 1 and parts.netloc:
        return f"{parts.scheme.lower()}://{_authority(parts)}", parts.path or "/"
    return "file", os.path.abspath(location)


def _authority(parts: Any) -> str:
    """Return ``host[:port]`` of a split URL, without user info (which may hold credentials)."""
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: leave it out
        port = None
    return f"{host}:{port}" if port is not None else host


def _workflow_documentation(facts: LineageFacts) -> str | None:
    """Return the workflow's name and description as one text, or None when neither is known."""
    parts = [part for part in (facts.workflow_name, facts.workflow_description) if part]
    return ": ".join(parts) or None


def _text(value: Any) -> str | None:
    """Return a non-blank string field of a response, else None."""
    return value if isinstance(value, str) and value.strip() else None
