"""The in-process emulator, :class:`OpusEmulator`: its settings, connection helpers and test helpers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.emulator.generations import CURRENT, DEFAULT_API
from airflow_provider_opus.emulator.listeners import Listeners
from airflow_provider_opus.emulator.middleware import ADMIN_PREFIX
from airflow_provider_opus.emulator.output_files import expected_output_file
from airflow_provider_opus.emulator.state import EmulatorState
from airflow_provider_opus.emulator.workflows import WorkflowSource, load_workflows

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_SERVICE_KEY = "emulator-service-key"


class OpusEmulator(Listeners):
    """
    A local Opus API, with the storage its presigned upload URLs and output files point to, for tests and demos.

    ::

        with OpusEmulator(job_duration=0.2) as emulator:
            emulator.inject("get_job_status", {"status": 503, "retry_after": "1"})
            run_code_against(emulator.url, emulator.service_key)
            assert emulator.requests("get_job_status")[0]["status"] == 503

    :param service_key: the ``x-service-key`` the API accepts.
    :param workflows: None for the bundled workflows, a path to a workflows JSON file, or a list of
        workflow dicts (see docs/emulator.md).
    :param job_duration: seconds from execute until a job completes or fails.
    :param host: interface both listeners bind to.
    :param port: API port; 0 picks a free one.
    :param storage_port: storage port; 0 picks a free one.
    :param ssl_certfile: a PEM certificate (chain) to serve HTTPS with, on both listeners; None serves
        plain HTTP. The certificate must name the host the clients connect to (e.g. ``127.0.0.1``).
    :param ssl_keyfile: the PEM private key of ``ssl_certfile``.
    :param results_shape: how ``GET /job/{id}/results`` answers for workflows whose ``emulator`` section sets
        no ``results_shape``: ``"results"`` (``{"results": {"summary", "outputFiles", "data"}}``) or
        ``"schema"`` (``{"jobResultsPayloadSchema": {<variable>: {..., "value"}}}``).
    :param files_require_key: whether downloads of output files need the ``x-service-key`` (``401``
        without it); the default serves them to anyone, like presigned storage.
    :param files_redirect_to: answer output file downloads with ``302`` to this base URL plus the file's
        path; None (the default) serves them. See :meth:`configure_file_serving`.
    :param api: the API generation to serve: ``"current"`` (the default; what Opus publishes today: strict
        bodies, a required ``callbackUrl``, workflow versions, results as ``jobResultsPayloadSchema`` only, a
        node-level audit) or ``"legacy"`` (the older API reference). ``configure(api=...)`` changes it.
    :raises WorkflowConfigError: if the workflows are invalid.
    :raises ValueError: if only one of ``ssl_certfile`` and ``ssl_keyfile`` is given, for an unknown results
        shape or generation, or a ``files_redirect_to`` that is not an http(s) URL.
    """

    # The steering methods below are the Python face of EmulatorState's: they repeat its signatures so
    # that DAG authors read them here, documented with the Python errors they raise, and forward to it.

    def __init__(
        self,
        service_key: str = DEFAULT_SERVICE_KEY,
        workflows: WorkflowSource = None,
        job_duration: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        results_shape: str = "results",
        files_require_key: bool = False,
        files_redirect_to: str | None = None,
        api: str = DEFAULT_API,
    ) -> None:
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise ValueError("give both ssl_certfile and ssl_keyfile to serve HTTPS, or neither")
        state = EmulatorState(
            load_workflows(workflows),
            service_key,
            job_duration=job_duration,
            results_shape=results_shape,
            files_require_key=files_require_key,
            files_redirect_to=files_redirect_to,
            api=api,
        )
        tls = (ssl_certfile, ssl_keyfile) if ssl_certfile and ssl_keyfile else None
        super().__init__(state, host, (port, storage_port), tls)

    @property
    def service_key(self) -> str:
        """The service key the emulator accepts."""
        return self.state.service_key

    @property
    def api(self) -> str:
        """The API generation served now, ``"current"`` or ``"legacy"``; ``configure(api=...)`` changes it."""
        return self.state.api

    @property
    def app_url(self) -> str:
        """The base URL of the workflow pages (``<app_url>/app/workflow/<id>``), for a connection's ``app_url``."""
        return self.url

    @property
    def callback_url(self) -> str:
        """The built-in callback receiver, ``<url>/_emulator/callbacks``; :meth:`callbacks` lists what it got."""
        return f"{self.url}{ADMIN_PREFIX}/callbacks"

    def connection_extra(self) -> dict[str, str]:
        """
        Return the connection extra that fits this emulator.

        ``app_url`` makes the "Opus workflow" link open the emulator's workflow page; in the current
        generation, ``callback_url`` names the built-in receiver, so that execute's required ``callbackUrl``
        has a value that works out of the box.
        """
        extra = {"app_url": self.app_url}
        if self.api == CURRENT:
            extra["callback_url"] = self.callback_url
        return extra

    def connection_json(self) -> str:
        """Return the value for ``AIRFLOW_CONN_OPUS_DEFAULT`` (or any ``AIRFLOW_CONN_*``) that targets this emulator."""
        return json.dumps(
            {"conn_type": "opus", "host": self.url, "password": self.service_key, "extra": self.connection_extra()}
        )

    # Test helpers (the same operations are on the /_emulator/ admin routes) --------------------------

    def inject(self, endpoint: str, *faults: Mapping[str, Any]) -> int:
        """
        Queue faults for an endpoint; each matching request consumes the next one.

        :param endpoint: one of :data:`~airflow_provider_opus.emulator.faults.ENDPOINTS`.
        :param faults: fault dicts, see docs/emulator.md.
        :return: the number of faults now queued for the endpoint.
        :raises ValueError: for an unknown endpoint or an invalid fault.
        """
        return self.state.inject(endpoint, faults)

    def clear_faults(self, endpoint: str | None = None) -> None:
        """
        Drop queued faults.

        :param endpoint: drop only this endpoint's queued faults; None drops all.
        """
        self.state.clear_faults(endpoint)

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """
        Return the logged requests.

        :param endpoint: only requests to this endpoint name (or "admin"); None for all.
        :return: logged requests, oldest first.
        """
        return self.state.requests(endpoint)

    def jobs(self) -> list[dict[str, Any]]:
        """Return every job with its current status, oldest first."""
        return self.state.jobs()

    def uploads(self) -> list[dict[str, Any]]:
        """:return: every issued upload URL with what was PUT to it (size, sha256, headers seen)."""
        return self.state.uploads()

    def callbacks(self) -> list[dict[str, Any]]:
        """:return: what was POSTed to :attr:`callback_url`, ``{"receivedAt", "contentType", "body"}``, oldest first."""
        return self.state.callbacks()

    def callback_deliveries(self) -> list[dict[str, Any]]:
        """
        Return every attempt to send a job's callback, oldest first.

        :return: ``{"jobExecutionId", "url", "attempt", "outcome", "status", "time"}`` each; ``outcome`` is
            ``delivered``, ``failed: <why>``, or ``skipped: not a loopback host`` (attempt 0).
        """
        return self.state.callback_deliveries()

    def set_job_status(self, job_id: str, status: str) -> None:
        """
        Force the status a job reports from now on.

        :raises LookupError: for an unknown job.
        """
        self.state.set_job_status(job_id, status)

    def set_status_sequence(
        self,
        workflow_id: str,
        statuses: list[str] | tuple[str, ...] | None,
        *,
        checks_per_status: int | None = None,
    ) -> list[str] | None:
        """
        Script the statuses that a workflow's jobs report, for jobs executed from now on.

        ::

            emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, ["QUEUED", "In Progress", "Completed"])

        The non-final statuses share the job's duration equally, or with ``checks_per_status`` each is reported
        for that many status checks (a wait that must see every status, whatever the machine's speed); the
        last one is the final status, and a job has results only if that is COMPLETED (in any case,
        surrounding spaces ignored).

        :param workflow_id: the workflow whose jobs to script.
        :param statuses: the statuses in order, the last one final; None clears the run-time sequence, so
            the workflows file's ``status_sequence`` (if any) applies again.
        :param checks_per_status: pace the sequence by status checks instead of time; None paces it by time.
        :return: the sequence jobs executed from now on will report, or None for the default course.
        :raises LookupError: for an unknown workflow.
        :raises ValueError: unless ``statuses`` is None or a non-empty list of non-empty strings, and
            ``checks_per_status`` None or a positive int.
        """
        return self.state.set_status_sequence(workflow_id, statuses, checks_per_status)

    def status_sequence(self, workflow_id: str) -> list[str] | None:
        """
        Return the statuses that a workflow's jobs executed from now on will report.

        :return: the run-time sequence, else the workflows file's, else None (the default course).
        :raises LookupError: for an unknown workflow.
        """
        return self.state.status_sequence(workflow_id)

    def set_results_shape(self, workflow_id: str, shape: str | None) -> str:
        """
        Set the shape of a workflow's job results, for every results request from now on (jobs already run too).

        ::

            emulator.set_results_shape(DEFAULT_WORKFLOW_ID, "schema")

        :param workflow_id: the workflow whose results to shape.
        :param shape: ``"results"`` or ``"schema"``; None clears the run-time shape, so the workflows file's
            ``results_shape`` (else the emulator-wide ``results_shape``) applies again.
        :return: the shape now in force for the workflow.
        :raises LookupError: for an unknown workflow.
        :raises ValueError: for an unknown shape.
        """
        return self.state.set_results_shape(workflow_id, shape)

    def results_shape(self, workflow_id: str) -> str:
        """
        Return the shape of a workflow's job results: set at run time, else in the workflows file, else the default.

        :raises LookupError: for an unknown workflow.
        """
        return self.state.results_shape(workflow_id)

    def configure_file_serving(self, require_key: bool = False, redirect_to: str | None = None) -> dict[str, Any]:
        """
        Set how the storage listener answers downloads of output files, until :meth:`reset`.

        Each call sets both settings; :meth:`reset` brings back the ones given to the constructor.

        ::

            emulator.configure_file_serving(require_key=True)
            # Redirect to this emulator's storage under another host name, to see what a redirect carries.
            emulator.configure_file_serving(redirect_to=emulator.storage_url.replace("127.0.0.1", "localhost"))

        :param require_key: answer ``401`` to a download without the right ``x-service-key``.
        :param redirect_to: answer a download with ``302 Location: <redirect_to><path>``; a request that
            arrives at that URL's host and port is served instead (after the key check). None serves every
            download.
        :return: the settings now in force, ``{"require_key", "redirect_to"}``.
        :raises ValueError: if ``redirect_to`` is not an http(s) URL.
        """
        return self.state.configure_file_serving(require_key, redirect_to)

    def expected_output_file(self, job_id: str, index: int = 1) -> bytes:
        """
        Return the content of a completed job's output file, to compare a download with.

        The whole file is built in memory: for a large file, hash the chunks of
        ``airflow_provider_opus.emulator.iter_output_file(job_id, index, size)`` instead.

        :param job_id: the jobExecutionId.
        :param index: the file's position in ``outputFiles``, from 1.
        :raises LookupError: for an unknown job, one without results (yet), or an index it has no file for.
        """
        return expected_output_file(job_id, index, self.state.output_file_size(job_id, index))

    def configure(
        self,
        *,
        job_duration: float | None = None,
        job_duration_jitter: float | None = None,
        upload_url_ttl: float | None = None,
        api: str | None = None,
    ) -> dict[str, Any]:
        """
        Change timing for jobs executed and upload URLs issued from now on, or the API generation.

        None leaves a value as is.

        :param job_duration: seconds from execute until a job completes or fails.
        :param job_duration_jitter: each job gets a uniformly random extra [0, jitter] seconds.
        :param upload_url_ttl: seconds a presigned upload URL stays valid.
        :param api: the API generation to serve from the next request on, ``"current"`` or ``"legacy"``.
        :return: the resulting configuration, ``{"job_duration", "job_duration_jitter", "upload_url_ttl", "api"}``.
        :raises ValueError: for a negative duration or an unknown generation.
        """
        return self.state.configure(job_duration, job_duration_jitter, upload_url_ttl, api)

    def reset(self) -> None:
        """
        Forget jobs, uploads, logged requests, queued faults, callbacks, run-time status sequences and results shapes.

        Output file serving goes back to the constructor's settings; workflows, timing and the API generation are kept.
        """
        self.state.reset()
