"""
The emulator's in-memory model: workflows, jobs, issued uploads, the request log, queued faults, config.

Both listeners' event loop and the test thread (through :class:`OpusEmulator` helpers) use one
:class:`EmulatorState`, so every public method takes the lock. Job progress is never driven by timers:
a job's status is derived from when it was executed and how long it takes, which keeps polling
thousands of jobs cheap.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.emulator.current_state import CurrentGeneration
from airflow_provider_opus.emulator.errors import BadRequest, Conflict, Forbidden, NotFound
from airflow_provider_opus.emulator.generations import ACCESS_SCOPES, DEFAULT_API, FILE_EXTENSIONS, check_api
from airflow_provider_opus.emulator.graph import check_graph_instance, file_urls
from airflow_provider_opus.emulator.jobs import FAILED, INPUT_FAILURE_SECONDS, Job, Upload
from airflow_provider_opus.emulator.results import legacy_results
from airflow_provider_opus.emulator.steering import Steering, check_results_shape, file_serving_settings
from airflow_provider_opus.emulator.traffic import RequestLog
from airflow_provider_opus.emulator.workflows import FILE_INPUT_TYPES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_opus.emulator.workflows import Workflow


class EmulatorState(CurrentGeneration, Steering, RequestLog):
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
        self.results_shape_default = check_results_shape(results_shape, "results_shape")
        # What reset() goes back to; configure_file_serving() changes the settings until then.
        self._file_serving_default = file_serving_settings(files_require_key, files_redirect_to)
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
        self._status_sequences: dict[str, tuple[str, ...]] = {}
        self._checks_per_status: dict[str, int] = {}
        self._results_shapes: dict[str, str] = {}
        self._init_traffic()
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
            return legacy_results(job, self._results_shape(job.workflow), self.storage_url, time.time())

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
