"""Run an Opus job: validate the inputs, initiate, execute, and optionally wait for it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.providers.common.compat.sdk import AirflowTaskTimeout, conf

from airflow_provider_opus.api import GET_WORKFLOW
from airflow_provider_opus.compat import ResumableJobMixin, task_state_store
from airflow_provider_opus.exceptions import (
    OpusBadRequestError,
    OpusConnectionConfigError,
    OpusInvalidArgumentError,
    describe_value,
)
from airflow_provider_opus.files import check_access_scope, check_local_files
from airflow_provider_opus.links.opus import OpusWorkflowLink, workflow_url
from airflow_provider_opus.operators.base import (
    DEFAULT_JOB_TIMEOUT,
    OpusBaseOperator,
    OpusJobWaitingOperator,
    check_flags,
    check_text,
    raise_unless_completed,
    rendered_later,
)
from airflow_provider_opus.payload import JobPayloadSchema
from airflow_provider_opus.polling import check_poll_intervals, check_timeout
from airflow_provider_opus.status import JobOutcome
from airflow_provider_opus.urls import checked_callback_url
from airflow_provider_opus.workflows import (
    WORKFLOW_ID_HINT,
    WorkflowVersion,
    checked_source,
    initiate_job_body,
    job_payload_schema_from,
    workspaces_field,
)

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context


class OpusExecuteJobOperator(ResumableJobMixin, OpusJobWaitingOperator):
    """
    Run an Opus workflow as a job: check inputs, upload files, initiate, execute, and wait.

    The inputs are checked against the workflow's jobPayloadSchema, and local files are
    uploaded, before the job is initiated: a bad input costs no billed job. The
    jobExecutionId is pushed to XCom (key ``job_execution_id``) as soon as the job exists,
    and returned as ``return_value`` in every mode.

    On a task retry the job is not started again while it can still be used: the id is
    kept in the task state store, and a retry reattaches to a job that is running, or
    returns at once for one that completed. Only a job that ended otherwise is replaced.
    This needs Airflow 3.3+: below it there is no task state store, and every try starts
    a new job (the task log says so).

    Opus has no cancel call: when the task is killed or times out, the job keeps running.

    :param workflow_id: the workflow to run (templated).
    :param inputs: input values keyed by display name, variable name or input id
        (templated; a JSON string is parsed). ``file`` inputs take a fileUrl or a local path,
        which is uploaded first.
    :param job_payload_schema_instance: a ready jobPayloadSchemaInstance instead of
        ``inputs`` (templated). It is checked against the schema too. A string ending in ``.json``
        is the path of a file (next to the DAG file or in ``template_searchpath``), rendered as a
        template; in every other argument such a string is a plain value.
    :param workflow_version: run this version of the workflow (templated): a version number (an int or
        a digit string) or a version's UUID. Its inputs are checked, and the job pinned to it, so a
        recurring run stays the same when someone edits the workflow. None runs the latest active version.
    :param title: the job's title (templated); by default names the DAG and task.
    :param description: the job's description (templated); by default names the DAG, task and run.
    :param callback_url: the https URL Opus POSTs the job's result to when it ends (templated); overrides
        the connection's ``callback_url``. Today's Opus requires one; the task still polls the status.
    :param source: where the job came from, as Opus records it: one of ``email-agent``, ``chat-agent``,
        ``scheduled``, ``api``, ``manual``, ``agent``, ``opus-ai``, ``web-app``; None sends none (Opus
        takes ``api``).
    :param ref_user_id: the Opus user the job is attributed to (templated).
    :param workspaces: workspace ids Opus checks access against: a list or a comma-separated string.
    :param access_scope: who may read uploaded files; None leaves them unlisted (today's Opus).
    :param workspace_id: the workspace that owns uploaded files (required for ``access_scope="workspace"``).
    :param wait_for_completion: wait for the job to finish; otherwise return once it started.
    :param deferrable: wait in the triggerer instead of a worker slot (after one status check).
    :param poll_interval: seconds between status checks while waiting.
    :param max_poll_interval: let the wait between status checks grow with the time waited
        (a tenth of it), from ``poll_interval`` up to this many seconds; None (the default)
        keeps ``poll_interval``. For jobs that can wait hours or days for a human review.
    :param timeout: seconds to wait for the job at most (default 7 days, as the sensor); None waits
        as long as the job runs. In deferrable mode the task's ``execution_timeout``, counted from the
        start of the try, also ends the wait (Airflow does not apply it to deferred tasks).
    :param durable: keep the job id in the task state store so a retry reattaches (Airflow 3.3+;
        accepted and without effect below 3.3).

    Takes the connection and retry arguments of :class:`~airflow_provider_opus.operators.base.OpusBaseOperator`.
    """

    template_fields = (
        *OpusBaseOperator.template_fields,
        "workflow_id",
        "inputs",
        "job_payload_schema_instance",
        "workflow_version",
        "title",
        "description",
        "callback_url",
        "ref_user_id",
    )
    template_fields_renderers = {"inputs": "json", "job_payload_schema_instance": "json"}
    operator_extra_links = (OpusWorkflowLink(),)
    external_id_key = "opus_job_execution_id"

    def __init__(
        self,
        *,
        workflow_id: str,
        inputs: Mapping[str, Any] | str | None = None,
        job_payload_schema_instance: Mapping[str, Any] | str | None = None,
        workflow_version: int | str | None = None,
        title: str | None = None,
        description: str | None = None,
        callback_url: str | None = None,
        source: str | None = None,
        ref_user_id: str | None = None,
        workspaces: str | list[str] | None = None,
        access_scope: str | None = "organization",
        workspace_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30,
        max_poll_interval: float | None = None,
        timeout: float | None = DEFAULT_JOB_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if inputs is not None and job_payload_schema_instance is not None:
            raise OpusInvalidArgumentError(
                f"Task {self.task_id!r}: give either inputs or job_payload_schema_instance, not both"
            )
        check_poll_intervals(poll_interval, max_poll_interval, task_id=self.task_id)
        check_timeout(timeout, self.task_id)
        check_access_scope(access_scope, workspace_id)
        check_flags(self.task_id, wait_for_completion=wait_for_completion, deferrable=deferrable)
        texts = {"title": title, "description": description, "ref_user_id": ref_user_id}
        for name, text in texts.items():
            if not rendered_later(text):
                check_text(self.task_id, name, text)
        for name, given in (("inputs", inputs), ("job_payload_schema_instance", job_payload_schema_instance)):
            if given is not None and not rendered_later(given) and not isinstance(given, Mapping):
                raise OpusInvalidArgumentError(
                    f"Task {self.task_id!r}: {name} must be a dict of input name to value, or JSON text, got "
                    f"{describe_value(given)}"
                )
        if not rendered_later(workflow_id):  # a blank string or a non-string is wrong already
            _checked_workflow_id(workflow_id, self.task_id)
        # Checked when the DAG is parsed where no template can change them; all again at execute.
        if not rendered_later(workflow_version):
            WorkflowVersion.parse(workflow_version)
        if not rendered_later(callback_url):
            checked_callback_url(callback_url, f"Task {self.task_id!r}: callback_url")
        if source is not None:
            checked_source(source)
        if workspaces is not None:
            workspaces_field(workspaces)
        self.workflow_id = workflow_id
        self.workflow_version = workflow_version
        self.callback_url = callback_url
        self.source = source
        self.ref_user_id = ref_user_id
        self.workspaces = workspaces
        self.workspace_id = workspace_id
        self.inputs = inputs
        self.job_payload_schema_instance = (
            InstanceFile(job_payload_schema_instance)
            if isinstance(job_payload_schema_instance, str) and job_payload_schema_instance.endswith(".json")
            else job_payload_schema_instance
        )
        self.title = title
        self.description = description
        self.access_scope = access_scope
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self.job_execution_id: str | None = None

    # -- BaseOperator ----------------------------------------------------------------------------

    def render_template(
        self,
        content: Any,
        context: Context,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """
        Render a templated value as Airflow does; the ``.json`` file job_payload_schema_instance names is read first.

        Only that argument names a file: Airflow's ``template_ext`` would read any templated string
        ending in ``.json`` as one (an input value, a title). Its value carries the mark
        (:class:`InstanceFile`, set in ``__init__``, which a mapped task's unmapping runs too).
        """
        if isinstance(content, InstanceFile):
            content = self._instance_file_source(content, jinja_env or self.get_template_env())
        return super().render_template(content, context, jinja_env, seen_oids)

    def _instance_file_source(self, name: str, jinja_env: jinja2.Environment) -> str:
        """Return the text of the ``.json`` file job_payload_schema_instance names."""
        loader = jinja_env.loader
        try:
            if loader is None:
                raise LookupError("the task is in no DAG, so there is no folder to look in")
            return loader.get_source(jinja_env, name)[0]
        except LookupError as exc:  # jinja2's TemplateNotFound is a LookupError
            raise OpusInvalidArgumentError(
                f"Task {self.task_id!r}: job_payload_schema_instance file {str(name)!r} was not found: put it "
                f"next to the DAG file or in a template_searchpath folder, or give the instance as a dict ({exc})"
            ) from None

    def execute(self, context: Context) -> str:
        """
        Start the job (or reattach to the one a previous try started) and wait as configured.

        :return: the jobExecutionId.
        """
        # The mixin returns nothing when it reattaches, so the id is taken from self.
        self.execute_resumable(context)
        job_execution_id = str(self.job_execution_id)
        if self.wait_for_completion:
            self.on_job_completed(context, job_execution_id)
        else:
            self._forget_job(context)
        return job_execution_id

    def on_job_completed(self, context: Context, job_execution_id: str) -> None:
        """
        Finish the task for a completed job: asset events, and forget the job in the task state.

        :param job_execution_id: the job.
        """
        if self.lineage_facts.workflow_id is None:  # resumed without the facts of before the deferral
            self.lineage_facts.record_workflow(self._checked_workflow_id())
        super().on_job_completed(context, job_execution_id)
        self.log.info("Opus job %s COMPLETED (workflow %s)", job_execution_id, self.workflow_id)
        self._forget_job(context)

    def _publish_job(self, context: Context, job_execution_id: str, workflow_id: str) -> str:
        """Push the job id and the workflow link, so downstream tasks and the UI have them at once."""
        self.job_execution_id = job_execution_id
        self.lineage_facts.job_execution_id = job_execution_id
        self.lineage_facts.record_workflow(workflow_id)
        version = self._checked_version()
        self.lineage_facts.workflow_version = str(version) if version else None
        link = workflow_url(self.hook.settings.app_url, workflow_id)
        if version is not None:
            link += "?" + urlencode(version.query)
        context["ti"].xcom_push(key="job_execution_id", value=job_execution_id)
        OpusWorkflowLink.persist(context, link)
        return link

    def _forget_job(self, context: Context) -> None:
        # Task state outlives success: a user who clears the task to run it again wants a new
        # job, not the finished one. Retries happen only after failures, which keep the id.
        store = task_state_store(context)
        if store is not None and self.durable:
            store.delete(self.external_id_key)

    def on_kill(self) -> None:
        """Say plainly that the remote job keeps running: Opus cannot cancel a job."""
        if self.job_execution_id:
            self.log.warning(
                "Task killed. Opus has no cancel call: job %s keeps running in Opus.", self.job_execution_id
            )

    # -- ResumableJobMixin -----------------------------------------------------------------------

    def submit_job(self, context: Context) -> str:
        """
        Check inputs, upload local files, initiate and execute the job.

        The id is stored in the task state store before the execute call, so a retry after
        an execute whose answer was lost reattaches instead of billing a second job.

        :return: the jobExecutionId.
        """
        workflow_id = self._checked_workflow_id()
        self._checked_callback_url()
        dag_id, task_id, run_id = context["dag"].dag_id, self.task_id, context["run_id"]
        title = self.title or f"{dag_id}.{task_id}"
        description = self.description or f"Started by Airflow: DAG {dag_id}, task {task_id}, run {run_id}"
        version = self._checked_version()
        initiate_fields: dict[str, Any] = {
            "version": version,
            "source": self.source,
            "ref_user_id": self.ref_user_id,
            "workspaces": self.workspaces,
        }
        initiate_job_body(workflow_id, title, description, **initiate_fields)  # checked before any call
        payload = self._build_payload(workflow_id)  # every input check happens before initiate
        job_execution_id = self.hook.initiate_job(workflow_id, title, description, **initiate_fields)
        link = self._publish_job(context, job_execution_id, workflow_id)
        self.log.info("Initiated Opus job %s of workflow %s: %s", job_execution_id, workflow_id, link)
        store = task_state_store(context)
        if store is not None and self.durable:
            store.set(self.external_id_key, job_execution_id)
        self._execute_job(job_execution_id, payload, store is not None and self.durable)
        return job_execution_id

    def _execute_job(self, job_execution_id: str, payload: dict[str, Any], reattaches: bool) -> None:
        callback_url = self._checked_callback_url()
        try:
            self.hook.execute_job(job_execution_id, payload, callback_url=callback_url, workspaces=self.workspaces)
        except OpusBadRequestError as exc:
            if exc.http_status == 409:
                # A conflict means an earlier execute call reached Opus after all: the job runs.
                self.log.info("Opus job %s was already executed (%s): waiting for it", job_execution_id, exc)
                return
            if "callbackurl" in (exc.server_message or "").lower() and not (
                callback_url or self.hook.settings.callback_url
            ):
                raise self._callback_url_needed(job_execution_id, exc, reattaches) from None
            raise
        self.log.info("Opus job %s started with %d inputs", job_execution_id, len(payload))

    def _callback_url_needed(self, job_execution_id: str, exc: OpusBadRequestError, reattaches: bool) -> Exception:
        """Return the error for an execute call Opus refused for want of a callback URL."""
        retry = (
            "A retry of this task executes that same job once callback_url is set."
            if reattaches
            else f"This task keeps no job id for a retry (Airflow below 3.3, or durable=False): a retry initiates "
            f"a new job, and job {job_execution_id} stays initiated without running."
        )
        return OpusConnectionConfigError(
            f"Opus refused to execute job {job_execution_id} because no callback URL was sent "
            f"(HTTP {exc.http_status}: {exc.server_message}). Set callback_url in the Opus connection "
            f"{self.opus_conn_id!r} (the 'Callback URL' field, extra key callback_url) or on this task "
            f"(callback_url=...). Opus POSTs the job's result there when it ends; the provider still polls the "
            f"job's status, so any https endpoint you control will do. Job {job_execution_id} was initiated and "
            f"not executed. {retry}"
        )

    # The name is ResumableJobMixin's (Airflow calls it on a retry, with the id an earlier try stored): more
    # than a read, it executes, and so bills, a job that try initiated but could not execute.
    def get_job_status(self, external_id: Any, context: Context) -> str:
        """
        Return the status of the job a previous try started, executing it first if it never was.

        A job the previous try initiated but could not execute (the execute call never reached
        Opus) is executed now under the same id, with this try's inputs, instead of initiating
        another one; a conflict answer means it was executed after all.

        :param external_id: the stored jobExecutionId.
        """
        job_execution_id = str(external_id)
        workflow_id = self._checked_workflow_id()
        self._publish_job(context, job_execution_id, workflow_id)
        status = self.hook.get_job_status(job_execution_id)
        if self.status_rules.outcome(status) is JobOutcome.NOT_STARTED:
            self.log.info(
                "Opus job %s was initiated by an earlier try but not executed (status %r): executing it now",
                job_execution_id,
                status,
            )
            self._execute_job(job_execution_id, self._build_payload(workflow_id), reattaches=True)
            status = self.hook.get_job_status(job_execution_id)
        return status

    def is_job_active(self, status: str) -> bool:
        """
        Tell whether a previous try's job has not ended, so this try reattaches to it.

        Running, waiting and unknown statuses all reattach: only a failed job is replaced.

        :param status: its status.
        """
        return not self.status_rules.is_final(status)

    def is_job_succeeded(self, status: str) -> bool:
        """
        Tell whether a previous try's job completed, so this try returns at once.

        :param status: its status.
        """
        return self.status_rules.is_success(status)

    def poll_until_complete(self, external_id: Any, context: Context) -> None:
        """
        Wait for the job as configured: not at all, in this worker, or deferred to the triggerer.

        :param external_id: the jobExecutionId.
        """
        job_execution_id = str(external_id)
        if not self.wait_for_completion:
            return
        if self.deferrable:
            self.defer_while_running(
                context,
                job_execution_id,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                timeout=self.timeout,
            )
            return
        try:
            status = self.hook.wait_for_job(
                job_execution_id, self.poll_interval, self.timeout, self.max_poll_interval, self.status_rules
            )
        except AirflowTaskTimeout:
            self.log.warning("Task timed out. Opus has no cancel call: job %s keeps running.", job_execution_id)
            raise
        self.lineage_facts.job_status = status
        raise_unless_completed(self.hook, job_execution_id, status)

    def get_job_result(self, external_id: Any, context: Context) -> str:
        """
        Return the jobExecutionId: what the task returns.

        :param external_id: the jobExecutionId.
        """
        return str(external_id)

    # -- inputs ------------------------------------------------------------------------------------

    def _checked_workflow_id(self) -> str:
        return _checked_workflow_id(self.workflow_id, self.task_id)

    def _checked_version(self) -> WorkflowVersion | None:
        return WorkflowVersion.parse(self.workflow_version)

    def _checked_callback_url(self) -> str | None:
        return checked_callback_url(self.callback_url, f"Task {self.task_id!r}: callback_url")

    def _build_payload(self, workflow_id: str) -> dict[str, Any]:
        # The whole details, not just the schema: lineage reports the workflow's name and description.
        version = self._checked_version()
        details = self.hook.get_workflow(workflow_id, version)
        self.lineage_facts.record_workflow(workflow_id, details)
        payload_schema = job_payload_schema_from(details, GET_WORKFLOW.path(workflow_id=workflow_id))
        schema = JobPayloadSchema(payload_schema, workflow_id)
        if self.job_payload_schema_instance is not None:
            instance = _parsed_mapping(self.job_payload_schema_instance, "job_payload_schema_instance")
            schema.validate_instance(instance)
            self.lineage_facts.add_inputs(schema.instance_files(instance))
            return dict(instance)
        inputs = _parsed_mapping(self.inputs if self.inputs is not None else {}, "inputs")
        local_paths = schema.local_file_paths(inputs)  # raises on any invalid input
        check_local_files(local_paths, self.hook.settings.max_upload_bytes)
        self.lineage_facts.add_inputs(local_paths)
        uploaded = {
            path: self.hook.upload_file(path, self.access_scope, workspace_id=self.workspace_id)
            for path in dict.fromkeys(local_paths)
        }
        payload = schema.build(inputs, uploaded=uploaded)
        self.lineage_facts.add_inputs(schema.instance_files(payload))
        return payload


class InstanceFile(str):
    """The name of the ``.json`` file a job_payload_schema_instance is read from, rendered as a template."""

    __slots__ = ()


def _checked_workflow_id(workflow_id: Any, task_id: str) -> str:
    """Return a workflow id without surrounding blanks; raise unless it is a non-blank string."""
    where = WORKFLOW_ID_HINT
    if not isinstance(workflow_id, str):
        # Not converted: ids are strings (a UUID, or "B9uGJfZ3CFwOdMKH"), so a number is a wrong value.
        raise OpusInvalidArgumentError(
            f"Task {task_id!r}: workflow_id must be a string, got {describe_value(workflow_id)}: {where}"
        )
    if not workflow_id.strip():
        raise OpusInvalidArgumentError(f"Task {task_id!r}: workflow_id is empty; {where}")
    return workflow_id.strip()


def _not_a_finite_number(name: str) -> Any:
    """Return a json.loads hook refusing NaN, Infinity and numbers beyond a double, naming the argument."""

    def refuse(text: str) -> float:
        number = float(text)  # NaN and Infinity, or a number like 1e400 that becomes infinity
        if not math.isfinite(number):
            raise OpusInvalidArgumentError(
                f"{name} is JSON text with {text}, which is not a finite number: give a finite number or null"
            )
        return number

    return refuse


def _parsed_mapping(value: Mapping[str, Any] | str, name: str) -> Mapping[str, Any]:
    """Return a mapping given directly, or rendered from a template or a .json file as JSON text."""
    if isinstance(value, str):
        # json.loads reads NaN and Infinity, which are not JSON: Opus would refuse the job after initiate.
        refuse = _not_a_finite_number(name)
        try:
            value = json.loads(value, parse_constant=refuse, parse_float=refuse)
        except OpusInvalidArgumentError:
            raise
        except (ValueError, RecursionError) as exc:
            raise OpusInvalidArgumentError(f"{name} is a string but not valid JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise OpusInvalidArgumentError(f"{name} must be a mapping of input name to value, got {type(value).__name__}")
    return value
