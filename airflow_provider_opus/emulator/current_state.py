"""
What the emulator's state does for the current API generation only.

That is: workflow versions, results as ``jobResultsPayloadSchema`` only, the node-level audit, job
callbacks and the upload size limit.

:class:`CurrentGeneration` is a part of :class:`~airflow_provider_opus.emulator.state.EmulatorState`
kept in a module of its own; its methods take the state's lock like the others.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.emulator.audit import node_audit
from airflow_provider_opus.emulator.errors import NotFound
from airflow_provider_opus.emulator.jobs import Job, is_completed, iso
from airflow_provider_opus.emulator.results import current_outputs
from airflow_provider_opus.emulator.state_base import StateBase

if TYPE_CHECKING:
    from airflow_provider_opus.emulator.workflows import Workflow

#: How many received callbacks and callback delivery attempts are kept (the oldest are dropped).
CALLBACK_LOG_LIMIT = 10_000


class CurrentGeneration(StateBase):
    """The current generation's part of the emulator state (see the module's docstring)."""

    def _init_current(self) -> None:
        """Start with no callbacks received, sent or due."""
        self._callbacks: list[dict[str, Any]] = []
        self._callback_deliveries: list[dict[str, Any]] = []
        # Executed jobs with a callback URL whose callback has not been handed to the sender yet.
        self._pending_callbacks: dict[str, Job] = {}

    def _clear_current(self) -> None:
        """Forget callbacks; call with the lock held."""
        self._callbacks.clear()
        self._callback_deliveries.clear()
        self._pending_callbacks.clear()

    # Workflows --------------------------------------------------------------------------------------

    def served_workflows(self) -> list[Workflow]:
        """Return the workflows the generation in force serves, in definition order."""
        return [workflow for workflow in self.workflows.values() if workflow.served_in(self.api)]

    def served_workflow(self, workflow_id: str) -> Workflow:
        """Return a workflow the generation in force serves; raise ``NotFound`` for any other id."""
        return self._workflow(workflow_id)

    def workflow_version_details(
        self, workflow_id: str, number: int | None = None, version_id: str | None = None
    ) -> dict[str, Any]:
        """
        Return what the current generation's ``GET /workflow/{id}`` answers: one version's details.

        :param number: the version number (``?version=``); None for the latest active version.
        :param version_id: the version's UUID (``?workflowVersionId=``); it wins over ``number``.
        :raises NotFound: for an unknown workflow or version.
        """
        workflow = self._workflow(workflow_id)
        return workflow.details_of(workflow.version(number, version_id))

    def resolve_workflow(self, workflow_id: str | None, reference_entity_id: str | None) -> str:
        """
        Return the id of the workflow a current initiate names: ``referenceEntityId`` wins over ``workflowId``.

        A workflow's reference entity is the ``referenceEntityId`` its details give, or its own id when
        that is a UUID (as the v2 platform's are).

        :raises NotFound: if no served workflow has that reference entity.
        """
        if reference_entity_id is None:
            assert workflow_id is not None
            return workflow_id
        wanted = reference_entity_id.lower()
        for workflow in self.served_workflows():
            if wanted in (str(workflow.details.get("referenceEntityId", "")).lower(), workflow.workflow_id.lower()):
                return workflow.workflow_id
        raise NotFound(f"No workflow has the reference entity {reference_entity_id}")

    # Jobs -------------------------------------------------------------------------------------------

    def job_results_current(self, job_id: str) -> dict[str, Any]:
        """
        Return the current generation's ``GET /job/{id}/results`` body: ``{"jobResultsPayloadSchema": {...}}``.

        Each output is ``{"value", "type", "displayName"}``; the schema is empty until the job has COMPLETED.

        :raises NotFound: for an unknown job.
        """
        with self._lock:
            job = self._job(job_id)
            outputs = current_outputs(job, self.storage_url) if job.has_results(time.time()) else {}
        return {"jobResultsPayloadSchema": outputs}

    def job_node_audit(self, job_id: str) -> dict[str, Any]:
        """Return the current generation's node-level audit of a job; raise ``NotFound`` for an unknown job."""
        with self._lock:
            return node_audit(self._job(job_id), time.time())

    # Callbacks --------------------------------------------------------------------------------------

    def due_callbacks(self) -> list[tuple[str, str, dict[str, Any]]]:
        """
        Hand over the callbacks of jobs that have ended (COMPLETED or FAILED) since the last call.

        Each is handed over once; the sender posts it (or records why not).

        :return: ``(jobExecutionId, callbackUrl, body)`` for each, the body being ``{"jobExecutionId",
            "status", "jobResultsPayloadSchema"}`` (results only for a COMPLETED job).
        """
        now = time.time()
        due = []
        with self._lock:
            for job_id, job in list(self._pending_callbacks.items()):
                status = job.end_status(now)
                if status is None or job.callback_url is None:
                    continue
                del self._pending_callbacks[job_id]
                job.callback_taken = True
                body: dict[str, Any] = {"jobExecutionId": job_id, "status": status}
                if is_completed(status):
                    body["jobResultsPayloadSchema"] = current_outputs(job, self.storage_url)
                due.append((job_id, job.callback_url, body))
        return due

    def _expect_callback(self, job: Job) -> None:
        """Queue a just-executed job's callback until it ends; call with the lock held."""
        if job.callback_url is not None:
            self._pending_callbacks[job.job_id] = job

    def record_callback_delivery(self, job_id: str, url: str, attempt: int, outcome: str, status: int | None) -> None:
        """
        Record one attempt to POST a job's callback (or that it was skipped: attempt 0).

        :param outcome: ``delivered``, ``failed`` (an error or a non-2xx answer, with the reason) or ``skipped``.
        :param status: the HTTP status of the answer, if there was one.
        """
        entry = {"jobExecutionId": job_id, "url": url, "attempt": attempt, "outcome": outcome, "status": status}
        with self._lock:
            self._callback_deliveries.append({**entry, "time": iso(time.time())})
            del self._callback_deliveries[:-CALLBACK_LOG_LIMIT]

    def callback_deliveries(self) -> list[dict[str, Any]]:
        """Return every callback delivery attempt, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._callback_deliveries]

    def receive_callback(self, body: Any, content_type: str | None) -> None:
        """
        Record a body POSTed to the built-in receiver, ``/_emulator/callbacks``.

        :param body: the parsed JSON, or the text when it was not JSON.
        :param content_type: the request's ``content-type``.
        """
        with self._lock:
            self._callbacks.append({"receivedAt": iso(time.time()), "contentType": content_type, "body": body})
            del self._callbacks[:-CALLBACK_LOG_LIMIT]

    def callbacks(self) -> list[dict[str, Any]]:
        """Return what the built-in receiver got: ``{"receivedAt", "contentType", "body"}``, oldest first."""
        with self._lock:
            return copy.deepcopy(self._callbacks)

    # Uploads ----------------------------------------------------------------------------------------

    def upload_limit(self, token: str) -> int | None:
        """Return the most bytes a PUT to an upload URL may carry; None for no limit (or an unknown URL)."""
        with self._lock:
            upload = self._uploads.get(token)
            return None if upload is None else upload.max_bytes

    def refuse_upload(self, token: str, size: int) -> None:
        """Record that a PUT was refused as too large; what was uploaded before (if anything) stays."""
        with self._lock:
            self._uploads[token].refused_size = size
