"""
Steering jobs from tests: forced statuses, status sequences, results shapes and output file serving.

A part of :class:`~airflow_provider_opus.emulator.state.EmulatorState`; its methods take the state's lock.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_opus.emulator.errors import BadRequest
from airflow_provider_opus.emulator.state_base import StateBase
from airflow_provider_opus.emulator.workflows import RESULTS_SHAPES, check_status_sequence

if TYPE_CHECKING:
    from airflow_provider_opus.emulator.workflows import Workflow


class Steering(StateBase):
    """The run-time settings of jobs and downloads, which :meth:`EmulatorState.reset` clears."""

    results_shape_default: str
    # Run-time status sequences by workflowId; they take precedence over the workflows file's.
    _status_sequences: dict[str, tuple[str, ...]]
    # Run-time pacing of those sequences by status checks instead of time, by workflowId.
    _checks_per_status: dict[str, int]
    # Run-time results shapes by workflowId, likewise.
    _results_shapes: dict[str, str]
    _file_serving: dict[str, Any]

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
            check_results_shape(shape, "shape")
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
        settings = file_serving_settings(require_key, redirect_to)
        with self._lock:
            self._file_serving = settings
            return dict(settings)

    def file_serving(self) -> dict[str, Any]:
        """Return how output file downloads are answered now, ``{"require_key", "redirect_to"}``."""
        with self._lock:
            return dict(self._file_serving)

    def _status_sequence(self, workflow: Workflow) -> tuple[str, ...] | None:
        """Return the status sequence in force for a workflow; call with the lock held."""
        return self._status_sequences.get(workflow.workflow_id, workflow.status_sequence)

    def _results_shape(self, workflow: Workflow) -> str:
        """Return the results shape in force for a workflow; call with the lock held."""
        return self._results_shapes.get(workflow.workflow_id) or workflow.results_shape or self.results_shape_default


def check_results_shape(shape: Any, name: str) -> str:
    """Validate a results shape; ``name`` is what to call it in the error."""
    if shape not in RESULTS_SHAPES:
        raise BadRequest(f"{name} must be one of {', '.join(RESULTS_SHAPES)}, got {shape!r}")
    return str(shape)


def file_serving_settings(require_key: Any, redirect_to: Any) -> dict[str, Any]:
    """Validate the output file serving settings."""
    if not isinstance(require_key, bool):
        raise BadRequest(f"require_key must be true or false, got {require_key!r}")
    if redirect_to is not None:
        parts = urlsplit(redirect_to) if isinstance(redirect_to, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadRequest(f"redirect_to must be an http(s) URL such as http://localhost:8080, got {redirect_to!r}")
    return {"require_key": require_key, "redirect_to": redirect_to}
