"""
The emulator's in-memory model: workflows, jobs, issued uploads, the request log, queued faults, config.

Both listeners' event loop and the test thread (through :class:`OpusEmulator` helpers) use one
:class:`EmulatorState`, so every public method takes the lock. Job progress is never driven by timers:
a job's status is derived from when it was executed and how long it takes, which keeps polling
thousands of jobs cheap.
"""

from __future__ import annotations

import copy
import random
import secrets
import threading
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_opus.emulator.current_state import SUMMARY, CurrentGeneration
from airflow_provider_opus.emulator.errors import BadRequest, Conflict, Forbidden, NotFound
from airflow_provider_opus.emulator.faults import Fault, check_endpoint, parse_faults
from airflow_provider_opus.emulator.generations import ACCESS_SCOPES, DEFAULT_API, FILE_EXTENSIONS, check_api
from airflow_provider_opus.emulator.graph import check_graph_instance, file_urls
from airflow_provider_opus.emulator.jobs import FAILED, INPUT_FAILURE_SECONDS, Job, Upload
from airflow_provider_opus.emulator.output_files import output_file_path
from airflow_provider_opus.emulator.workflows import (
    FILE_INPUT_TYPES,
    RESULTS_SHAPES,
    Workflow,
    check_status_sequence,
    output_schema,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


REQUEST_LOG_LIMIT = 100_000


class EmulatorState(CurrentGeneration):
    """
    Everything the emulator remembers, guarded by one lock.

    :param workflows: the workflows to serve, by workflowId.
    :param service_key: the ``x-service-key`` value the API accepts.
    :param job_duration: seconds from execute until a job completes or fails.
    :param job_duration_jitter: each job takes a uniformly random extra [0, jitter] seconds.
    :param upload_url_ttl: seconds a presigned upload URL stays valid.
    :param results_shape: the results shape of workflows that set none, one of
        :data:`~airflow_provider_opus.emulator.workflows.RESULTS_SHAPES`.
    :param files_require_key: whether output file downloads need the ``x-service-key``.
    :param files_redirect_to: answer output file downloads with a redirect to this base URL; None serves them.
    :param api: the API generation to serve, ``"current"`` or ``"legacy"`` (see
        :mod:`~airflow_provider_opus.emulator.generations`); :meth:`configure` changes it.
    :raises BadRequest: for an unknown results shape or generation, or a redirect URL that is not http(s).
    """

    def __init__(
        self,
        workflows: Mapping[str, Workflow],
        service_key: str,
        job_duration: float = 1.0,
        job_duration_jitter: float = 0.0,
        upload_url_ttl: float = 3600.0,
        results_shape: str = "results",
        files_require_key: bool = False,
        files_redirect_to: str | None = None,
        api: str = DEFAULT_API,
    ) -> None:
        self.api = check_api(api)
        self.workflows = dict(workflows)
        self.service_key = service_key
        self.results_shape_default = _check_results_shape(results_shape, "results_shape")
        # What reset() goes back to; configure_file_serving() changes the settings until then.
        self._file_serving_default = _file_serving(files_require_key, files_redirect_to)
        self._file_serving = dict(self._file_serving_default)
        # Set by the server once the storage listener is bound; upload URLs point there.
        self.storage_url = "http://127.0.0.1"
        self._lock = threading.Lock()
        self._random = random.Random()
        self._config: dict[str, float] = {}
        self.configure(
            job_duration=job_duration, job_duration_jitter=job_duration_jitter, upload_url_ttl=upload_url_ttl
        )
        self._jobs: dict[str, Job] = {}
        self._uploads: dict[str, Upload] = {}
        self._uploads_by_file_url: dict[str, Upload] = {}
        self._log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._faults: dict[str, deque[Fault]] = {}
        # Run-time status sequences by workflowId; they take precedence over the workflows file's.
        self._status_sequences: dict[str, tuple[str, ...]] = {}
        # Run-time pacing of those sequences by status checks instead of time, by workflowId.
        self._checks_per_status: dict[str, int] = {}
        # Run-time results shapes by workflowId, likewise.
        self._results_shapes: dict[str, str] = {}
        self._init_current()

    # Workflows and jobs (the Opus API) --------------------------------------------------------------

    def workflow_details(self, workflow_id: str) -> dict[str, Any]:
        """Return a workflow's details; raise ``NotFound`` for an unknown workflow."""
        return self._workflow(workflow_id).details

    def create_job(
        self,
        workflow_id: str,
        title: str,
        description: str,
        *,
        version_number: int | None = None,
        version_id: str | None = None,
        initiated_with: dict[str, Any] | None = None,
    ) -> str:
        """
        Create a job that waits to be executed, pinned to one version of its workflow.

        :param version_number: pin this version; None (and no ``version_id``) for the latest active one.
        :param version_id: pin the version with this UUID; it wins over ``version_number``.
        :param initiated_with: what else initiate gave (``source``, ``refUserId``, ...), kept for the admin summary.
        :return: the new jobExecutionId.
        :raises NotFound: for an unknown workflow or version.
        """
        workflow = self._workflow(workflow_id)
        version = workflow.version(version_number, version_id)
        job = Job(
            uuid.uuid4().hex,
            workflow,
            title,
            description,
            created_at=time.time(),
            version=version,
            initiated_with=dict(initiated_with or {}),
        )
        with self._lock:
            self._jobs[job.job_id] = job
        return job.job_id

    def execute_job(self, job_id: str, instance: Any, *, callback_url: str | None = None) -> dict[str, Any]:
        """
        Start a job. Whether it will fail is decided now and revealed once its duration has passed.

        The instance is checked against the version the job is pinned to. A workflow in the v2 graph form
        takes what the live platform takes and fails its Input node at once for what the live platform
        fails (see :func:`~airflow_provider_opus.emulator.graph.check_graph_instance`).

        :param instance: the jobPayloadSchemaInstance, ``{variable: {"value": ..., "type": ...}}``.
        :param callback_url: where to POST the job's result when it ends; None for no callback.
        :return: the submitted values, ``{variable: value}``.
        :raises NotFound: for an unknown job.
        :raises Conflict: if the job was already executed.
        :raises BadRequest: if the instance does not match the version's jobPayloadSchema.
        """
        with self._lock:
            job = self._job(job_id)
            if job.executed_at is not None:
                raise Conflict(f"Job {job_id} has already been executed")
            inputs = job.version.inputs
            if job.workflow.graph is None:
                values = _check_instance(instance, inputs)
                files, failure = self._outcome(values, inputs)
            else:
                values, failure = check_graph_instance(instance, inputs)
                files = [url for _, url in file_urls(values, inputs)]
                missing = [(name, url) for name, url in file_urls(values, inputs) if not self._was_uploaded(url)]
                if failure is None and missing:
                    failure = f"file {missing[0][1]} ({missing[0][0]}) was never uploaded"
                failure = None if failure is None else f"Job failed: {failure}"
            now = time.time()
            duration = job.workflow.duration_seconds
            if duration is None:
                duration = self._config["job_duration"]
            duration += self._random.uniform(0, self._config["job_duration_jitter"])
            if failure is not None and job.workflow.graph is not None:
                duration = min(duration, INPUT_FAILURE_SECONDS)
            sequence = self._status_sequence(job.workflow)
            if sequence is None:
                job.executed_at, job.finishes_at = now, now + duration
            else:
                *steps, final = sequence
                # The non-final statuses share the duration equally; with none, the job finishes at once.
                finishes_at = now + duration if steps else now
                step = duration / len(steps) if steps else 0.0
                # A job that fails (a missing input, a file never uploaded) ends FAILED whatever the script says.
                job.timeline = (
                    *((now + index * step, status) for index, status in enumerate(steps)),
                    (finishes_at, FAILED if failure else final),
                )
                job.executed_at, job.finishes_at = now, finishes_at
                job.checks_per_status = self._checks_per_status.get(job.workflow.workflow_id)
            job.instance, job.files, job.failure = instance, files, failure
            job.callback_url = callback_url
            self._expect_callback(job)
        return values

    def job_status(self, job_id: str) -> str:
        """Return a job's status; raise ``NotFound`` for an unknown job."""
        with self._lock:
            job = self._job(job_id)
            status = job.status(time.time())
            if job.timeline is not None:
                job.checks += 1
            return status

    def job_results(self, job_id: str) -> dict[str, Any]:
        """
        Return a job's results, in the results shape in force for its workflow (see :meth:`results_shape`).

        :return: the ``GET /job/{id}/results`` body: ``{"jobExecutionId", "status", "results": {"summary",
            "outputFiles", "data"}}``, or in the schema shape ``{"jobExecutionId", "status",
            "jobResultsPayloadSchema": {<variable>: {"variable_name", "display_name", "type", "description",
            "value"}}}``. ``results`` (or ``jobResultsPayloadSchema``) is empty unless the job COMPLETED (for a
            status sequence: unless it reached its final status and that is COMPLETED in any case).
        :raises NotFound: for an unknown job.
        """
        with self._lock:
            job = self._job(job_id)
            now = time.time()
            status = job.status(now)
            workflow = job.workflow
            shape = self._results_shape(workflow)
            completed = job.has_results(now)
            inputs_received = len(job.instance)
            files = [f"{self.storage_url}{output_file_path(job_id, n)}" for n in range(1, workflow.output_files + 1)]
        body: dict[str, Any] = {"jobExecutionId": job_id, "status": status}
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

    def output_file_size(self, job_id: str, index: int) -> int:
        """
        Return the size of a completed job's output file.

        :param index: the file's position in ``outputFiles``, from 1.
        :raises NotFound: for an unknown job, a job that has no results (yet) or an index it has no file for.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.has_results(time.time()) or not 1 <= index <= job.workflow.output_files:
                raise NotFound(f"Output file {index} of job {job_id} not found")
            return job.workflow.output_file_bytes

    def job_audit_trail(self, job_id: str) -> list[dict[str, str]]:
        """Return a job's audit trail; raise ``NotFound`` for an unknown job."""
        with self._lock:
            return self._job(job_id).audit_trail(time.time())

    # Uploads ------------------------------------------------------------------------------------------

    def issue_upload(
        self,
        file_extension: str,
        access_scope: str | None,
        *,
        current: dict[str, Any] | None = None,
        max_bytes: int | None = None,
    ) -> tuple[str, str]:
        """
        Issue a presigned upload URL on the storage listener.

        :param file_extension: e.g. ``".pdf"`` or ``"PDF"``.
        :param access_scope: one of :data:`ACCESS_SCOPES`; None (current generation only) for an unlisted file.
        :param current: what a current generation request gave besides (``originalName``, ``workspaceId``,
            ``workflowId``), shown in its upload summary; None for a legacy request.
        :param max_bytes: the most bytes a PUT to the URL may carry; None for no limit.
        :return: ``(presignedUrl, fileUrl)``.
        :raises BadRequest: for an unsupported extension or scope.
        """
        extension = file_extension.strip().lstrip(".").lower()
        if extension not in FILE_EXTENSIONS:
            raise BadRequest(f"Unsupported fileExtension {file_extension!r}; supported: {', '.join(FILE_EXTENSIONS)}")
        if access_scope not in ACCESS_SCOPES and not (access_scope is None and current is not None):
            raise BadRequest(f"Invalid accessScope {access_scope!r}; expected one of: {', '.join(ACCESS_SCOPES)}")
        now = time.time()
        with self._lock:
            upload = Upload(
                token=secrets.token_urlsafe(16),
                signature=secrets.token_hex(32),
                file_url=f"{self.storage_url}/media/private/uploaded/media_{uuid.uuid4()}.{extension}",
                extension=extension,
                access_scope=access_scope,
                issued_at=now,
                expires_at=now + self._config["upload_url_ttl"],
                current=None if current is None else dict(current),
                max_bytes=max_bytes,
            )
            self._uploads[upload.token] = upload
            self._uploads_by_file_url[upload.file_url] = upload
        presigned_url = f"{self.storage_url}/upload/{upload.token}?X-Amz-Signature={upload.signature}"
        return presigned_url, upload.file_url

    def check_upload(self, token: str, signature: str | None) -> None:
        """Check a presigned upload; raise ``Forbidden`` for an unknown token, a wrong signature or an expired URL."""
        with self._lock:
            upload = self._uploads.get(token)
            if upload is None or signature is None or not secrets.compare_digest(signature, upload.signature):
                raise Forbidden("Invalid or unknown upload URL")
            if time.time() > upload.expires_at:
                raise Forbidden("Upload URL has expired")

    def record_upload(
        self,
        token: str,
        *,
        size: int,
        sha256: str,
        content_type: str | None,
        had_service_key: bool,
        had_authorization: bool,
    ) -> None:
        """Record a completed PUT to a presigned URL (a later PUT replaces the object, as on S3)."""
        with self._lock:
            upload = self._uploads[token]
            upload.uploaded_at = time.time()
            upload.size, upload.sha256, upload.content_type = size, sha256, content_type
            upload.had_service_key, upload.had_authorization = had_service_key, had_authorization

    # Request log and faults ---------------------------------------------------------------------------

    def log_request(
        self,
        listener: str,
        endpoint: str | None,
        method: str,
        path: str,
        had_service_key: bool,
        client_port: int | None = None,
    ) -> dict[str, Any]:
        """
        Append a request to the log before it is handled.

        :param client_port: the client's TCP port: requests that share one came over one connection.
        :return: the entry, to pass to :meth:`update_request` once the response starts.
        """
        entry = {
            "listener": listener,
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "client_port": client_port,
            "status": None,
            "had_service_key": had_service_key,
            "time": time.time(),
            "fault": None,
        }
        with self._lock:
            self._log.append(entry)
        return entry

    def update_request(self, entry: dict[str, Any], **changes: Any) -> None:
        """Fill in what became known while handling a logged request (``status``, ``fault``)."""
        with self._lock:
            entry.update(changes)

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """
        Return the logged requests.

        :param endpoint: only requests to this endpoint name; None for all.
        :return: copies of the logged requests, oldest first.
        """
        with self._lock:
            return [dict(entry) for entry in self._log if endpoint is None or entry["endpoint"] == endpoint]

    def inject(self, endpoint: str, faults: Iterable[Mapping[str, Any]]) -> int:
        """
        Queue faults for an endpoint; each matching request consumes the next one.

        :return: the number of faults now queued for the endpoint.
        :raises BadRequest: for an unknown endpoint or an invalid fault (nothing is queued then).
        """
        check_endpoint(endpoint)
        parsed = [fault for spec in faults for fault in parse_faults(spec)]
        with self._lock:
            queue = self._faults.setdefault(endpoint, deque())
            queue.extend(parsed)
            return len(queue)

    def take_fault(self, endpoint: str | None) -> Fault | None:
        """Pop the next fault queued for ``endpoint``, if any."""
        with self._lock:
            queue = self._faults.get(endpoint) if endpoint else None
            return queue.popleft() if queue else None

    def clear_faults(self, endpoint: str | None = None) -> None:
        """
        Drop the queued faults of one endpoint, or of all when ``endpoint`` is None.

        :raises BadRequest: for an unknown endpoint.
        """
        if endpoint is not None:
            check_endpoint(endpoint)
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)

    # Admin --------------------------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        """:return: a summary of every job, oldest first."""
        now = time.time()
        with self._lock:
            return [job.summary(now) for job in self._jobs.values()]

    def uploads(self) -> list[dict[str, Any]]:
        """:return: a summary of every issued upload URL and what was PUT to it."""
        with self._lock:
            return [upload.summary() for upload in self._uploads.values()]

    def set_job_status(self, job_id: str, status: str) -> None:
        """
        Force the status a job reports from now on, whatever its timing.

        :raises NotFound: for an unknown job.
        :raises BadRequest: for an empty status.
        """
        if not isinstance(status, str) or not status:
            raise BadRequest("status must be a non-empty string")
        with self._lock:
            self._job(job_id).override = (status, time.time())

    def set_status_sequence(
        self,
        workflow_id: str,
        statuses: list[str] | tuple[str, ...] | None,
        checks_per_status: int | None = None,
    ) -> list[str] | None:
        """
        Script the statuses that a workflow's jobs executed from now on report; None clears the script.

        :param statuses: the statuses in order, the last one final; None to clear the run-time sequence, so
            the workflows file's ``status_sequence`` (if any) applies again.
        :param checks_per_status: pace the sequence by status checks instead of time: each non-final status
            is reported for this many checks (of any client), then the next; None paces it by the job's duration.
        :return: the sequence that jobs executed from now on will report, or None for the default course.
        :raises NotFound: for an unknown workflow.
        :raises BadRequest: unless ``statuses`` is None or a non-empty list of non-empty strings.
        """
        workflow = self._workflow(workflow_id)
        if statuses is not None:
            try:
                statuses = check_status_sequence(statuses, "statuses")
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        if checks_per_status is not None and (
            not isinstance(checks_per_status, int) or isinstance(checks_per_status, bool) or checks_per_status < 1
        ):
            raise BadRequest(f"checks_per_status must be a positive int or null, got {checks_per_status!r}")
        with self._lock:
            self._checks_per_status.pop(workflow_id, None)
            if statuses is None:
                self._status_sequences.pop(workflow_id, None)
            else:
                self._status_sequences[workflow_id] = tuple(statuses)
                if checks_per_status is not None:
                    self._checks_per_status[workflow_id] = checks_per_status
            sequence = self._status_sequence(workflow)
        return None if sequence is None else list(sequence)

    def status_sequence(self, workflow_id: str) -> list[str] | None:
        """
        Return the statuses that a workflow's jobs executed from now on will report.

        :return: the run-time sequence, else the workflows file's, else None (the default course).
        :raises NotFound: for an unknown workflow.
        """
        workflow = self._workflow(workflow_id)
        with self._lock:
            sequence = self._status_sequence(workflow)
        return None if sequence is None else list(sequence)

    def set_results_shape(self, workflow_id: str, shape: str | None) -> str:
        """
        Set the shape of a workflow's ``GET /job/{id}/results`` answers from now on; None clears it.

        :param shape: one of :data:`~airflow_provider_opus.emulator.workflows.RESULTS_SHAPES`; None to
            clear the run-time shape, so the workflows file's ``results_shape`` (else the emulator-wide
            one) applies again.
        :return: the shape now in force for the workflow.
        :raises NotFound: for an unknown workflow.
        :raises BadRequest: for an unknown shape.
        """
        workflow = self._workflow(workflow_id)
        if shape is not None:
            _check_results_shape(shape, "shape")
        with self._lock:
            if shape is None:
                self._results_shapes.pop(workflow_id, None)
            else:
                self._results_shapes[workflow_id] = shape
            return self._results_shape(workflow)

    def results_shape(self, workflow_id: str) -> str:
        """
        Return the shape of a workflow's results: the run-time one, else the workflows file's, else the default.

        :raises NotFound: for an unknown workflow.
        """
        workflow = self._workflow(workflow_id)
        with self._lock:
            return self._results_shape(workflow)

    def configure_file_serving(self, require_key: bool = False, redirect_to: str | None = None) -> dict[str, Any]:
        """
        Set how the storage listener answers output file downloads, until :meth:`reset`.

        Each call sets both settings; :meth:`reset` brings back the ones the emulator was created with.

        :param require_key: answer ``401`` to a download without the right ``x-service-key``.
        :param redirect_to: answer a download with ``302`` to this base URL plus the file's path (a request
            that arrives at that URL's host and port is served); None serves every download.
        :return: the settings now in force, ``{"require_key", "redirect_to"}``.
        :raises BadRequest: if ``require_key`` is not a bool or ``redirect_to`` not an http(s) URL.
        """
        settings = _file_serving(require_key, redirect_to)
        with self._lock:
            self._file_serving = settings
            return dict(settings)

    def file_serving(self) -> dict[str, Any]:
        """Return how output file downloads are answered now, ``{"require_key", "redirect_to"}``."""
        with self._lock:
            return dict(self._file_serving)

    def configure(
        self,
        job_duration: float | None = None,
        job_duration_jitter: float | None = None,
        upload_url_ttl: float | None = None,
        api: str | None = None,
    ) -> dict[str, Any]:
        """
        Change settings for jobs executed and upload URLs issued from now on; None leaves one unchanged.

        :param api: the API generation to serve from the next request on (jobs already created keep their
            version, callback and course).
        :return: the resulting configuration, ``{"job_duration", "job_duration_jitter", "upload_url_ttl", "api"}``.
        :raises BadRequest: for a negative or non-numeric value, or an unknown generation.
        """
        if api is not None:
            check_api(api)
        changes = {
            "job_duration": job_duration,
            "job_duration_jitter": job_duration_jitter,
            "upload_url_ttl": upload_url_ttl,
        }
        for name, value in changes.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise BadRequest(f"{name} must be a non-negative number")
        with self._lock:
            self._config.update({name: float(value) for name, value in changes.items() if value is not None})
            if api is not None:
                self.api = api
            return {**self._config, "api": self.api}

    def config(self) -> dict[str, Any]:
        """Return the configuration in force, as :meth:`configure` does."""
        with self._lock:
            return {**self._config, "api": self.api}

    def reset(self) -> None:
        """
        Forget jobs, uploads, logged requests, queued faults, run-time status sequences and results shapes, callbacks.

        Workflows (with their file settings) and the configuration (the API generation included) are kept;
        the output file serving goes back to the settings the emulator was created with.
        """
        with self._lock:
            self._status_sequences.clear()
            self._checks_per_status.clear()
            self._results_shapes.clear()
            self._file_serving = dict(self._file_serving_default)
            self._jobs.clear()
            self._uploads.clear()
            self._uploads_by_file_url.clear()
            self._log.clear()
            self._faults.clear()
            self._clear_current()

    # Internals ----------------------------------------------------------------------------------------

    def _workflow(self, workflow_id: str) -> Workflow:
        workflow = self.workflows.get(workflow_id)
        # A workflow of the other generation only (the bundled current-only ones in legacy) is not there.
        if workflow is None or not workflow.served_in(self.api):
            raise NotFound(f"Workflow {workflow_id} not found")
        return workflow

    def _status_sequence(self, workflow: Workflow) -> tuple[str, ...] | None:
        """Return the status sequence in force for a workflow; call with the lock held."""
        return self._status_sequences.get(workflow.workflow_id, workflow.status_sequence)

    def _results_shape(self, workflow: Workflow) -> str:
        """Return the results shape in force for a workflow; call with the lock held."""
        return self._results_shapes.get(workflow.workflow_id) or workflow.results_shape or self.results_shape_default

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"Job {job_id} not found")
        return job

    def _outcome(self, values: dict[str, Any], inputs: dict[str, dict[str, Any]]) -> tuple[list[str], str | None]:
        """Decide which files get processed and why the job will fail, if it will."""
        files: list[str] = []
        for name, definition in inputs.items():
            value = values.get(name)
            if value is None:
                if not definition["is_nullable"]:
                    label = definition["display_name"]
                    return files, f"Job failed: required input '{label}' ({name}) was not provided"
                continue
            if definition["type"] not in FILE_INPUT_TYPES:
                continue
            urls = value if isinstance(value, list) else [value]
            for url in urls:
                if isinstance(url, str) and not self._was_uploaded(url):
                    return files, f"Job failed: file {url} ({name}) was never uploaded"
                files.append(str(url))
        return files, None

    def _was_uploaded(self, url: str) -> bool:
        upload = self._uploads_by_file_url.get(url)
        if upload is not None:
            return upload.uploaded_at is not None
        # A URL on our storage that we never issued (a mangled fileUrl, say) cannot have been uploaded;
        # anything else, like https://files.opus.com/..., is taken to exist.
        return not url.startswith(f"{self.storage_url}/")


def _check_results_shape(shape: Any, name: str) -> str:
    if shape not in RESULTS_SHAPES:
        raise BadRequest(f"{name} must be one of {', '.join(RESULTS_SHAPES)}, got {shape!r}")
    return str(shape)


def _file_serving(require_key: Any, redirect_to: Any) -> dict[str, Any]:
    """Validate the output file serving settings."""
    if not isinstance(require_key, bool):
        raise BadRequest(f"require_key must be true or false, got {require_key!r}")
    if redirect_to is not None:
        parts = urlsplit(redirect_to) if isinstance(redirect_to, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadRequest(f"redirect_to must be an http(s) URL such as http://localhost:8080, got {redirect_to!r}")
    return {"require_key": require_key, "redirect_to": redirect_to}


def _check_instance(instance: Any, inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Validate a jobPayloadSchemaInstance's shape and return ``{variable: value}``."""
    if not isinstance(instance, dict):
        raise BadRequest("jobPayloadSchemaInstance must be an object")
    values: dict[str, Any] = {}
    for name, item in instance.items():
        definition = inputs.get(name)
        if definition is None:
            raise BadRequest(
                f"jobPayloadSchemaInstance has unknown input {name!r}; the workflow's inputs are: {', '.join(inputs)}"
            )
        if not isinstance(item, dict) or "value" not in item or "type" not in item:
            raise BadRequest(f'jobPayloadSchemaInstance.{name} must be an object {{"value": ..., "type": ...}}')
        if item["type"] != definition["type"]:
            raise BadRequest(
                f"jobPayloadSchemaInstance.{name} has type {item['type']!r} "
                f"but the workflow expects {definition['type']!r}"
            )
        values[name] = item["value"]
    return values
