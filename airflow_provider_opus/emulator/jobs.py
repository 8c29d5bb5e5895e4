"""
What the emulator keeps per job and per issued upload URL.

A job's status and audit trail follow from its timestamps: its progress is computed when asked, never
driven by timers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_opus.emulator.versions import WorkflowVersion
    from airflow_provider_opus.emulator.workflows import Workflow

# The API reference documents IN PROGRESS, COMPLETED and FAILED only; what the real service reports for
# a job that was initiated but not executed is undocumented.
NOT_STARTED = "NOT STARTED"
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"


def is_completed(status: str) -> bool:
    """Tell whether a status means COMPLETED, ignoring case and surrounding whitespace."""
    return status.strip().casefold() == COMPLETED.casefold()


#: A failed Input node ends the run at once in the v2 graph form ("in milliseconds", live reports say).
INPUT_FAILURE_SECONDS = 0.05


def is_failed(status: str) -> bool:
    """Tell whether a status means FAILED, ignoring case and surrounding whitespace."""
    return status.strip().casefold() == FAILED.casefold()


@dataclass
class Job:
    """
    One job: initiated, perhaps executed, its course fixed at execute.

    :param version: the workflow version it is pinned to (the latest active one unless initiate named one).
    :param initiated_with: what the current generation's initiate gave besides the workflow and version
        (``source``, ``refUserId``, ``workspaces``, ``initialInput``, ``webAppId``), for the admin summary.
    :param callback_url: where to POST its result when it ends (current generation); None for no callback.
    :param callback_taken: whether the callback has been handed to the sender (it is sent once).
    """

    job_id: str
    workflow: Workflow
    title: str
    description: str
    created_at: float
    version: WorkflowVersion
    initiated_with: dict[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    callback_taken: bool = False
    executed_at: float | None = None
    finishes_at: float | None = None
    instance: dict[str, Any] = field(default_factory=dict)  # the jobPayloadSchemaInstance as submitted
    # Files that passed validation; each gets a "File validated and processed" audit entry.
    files: list[str] = field(default_factory=list)
    failure: str | None = None
    override: tuple[str, float] | None = None  # (status, when) set by set_job_status
    # A scripted status sequence as (from when, status) steps, fixed at execute; the last step starts at
    # finishes_at and is the final status. None for the default course: IN PROGRESS, then COMPLETED/FAILED.
    timeline: tuple[tuple[float, str], ...] | None = None
    # With a sequence paced by checks: each non-final status is reported for this many status checks.
    checks_per_status: int | None = None
    checks: int = 0  # status checks answered since execute

    def status(self, now: float) -> str:
        """Return the status the job reports at ``now`` (a forced one, its sequence's, or the default course's)."""
        if self.override is not None:
            return self.override[0]
        if self.finishes_at is None:
            return NOT_STARTED
        if self.timeline is not None:
            if self.checks_per_status is not None:
                return self.timeline[self._step_by_checks()][1]
            current = self.timeline[0][1]
            for start, status in self.timeline:
                if start > now:
                    break
                current = status
            return current
        if now < self.finishes_at:
            return IN_PROGRESS
        return FAILED if self.failure else COMPLETED

    def end_status(self, now: float) -> str | None:
        """
        Return the status a job ended with once it is COMPLETED or FAILED for good (final or forced), else None.

        Status checks are not counted here: the callback sender asks without moving a job paced by checks on.
        """
        if self.override is not None:
            status = self.override[0]
        elif self.finishes_at is None:
            return None
        elif self.timeline is None:
            if now < self.finishes_at:
                return None
            status = FAILED if self.failure else COMPLETED
        else:
            at_final = (
                self._step_by_checks() == len(self.timeline) - 1
                if self.checks_per_status is not None
                else now >= self.finishes_at
            )
            if not at_final:
                return None
            status = self.timeline[-1][1]
        return status if is_completed(status) or is_failed(status) else None

    def has_results(self, now: float) -> bool:
        """Tell whether ``GET /job/{id}/results`` has results: the job finished as COMPLETED."""
        if self.override is not None or self.timeline is None or self.finishes_at is None:
            return self.status(now) == COMPLETED
        if self.checks_per_status is not None:
            at_final = self._step_by_checks() == len(self.timeline) - 1
        else:
            at_final = now >= self.finishes_at
        return at_final and is_completed(self.timeline[-1][1])

    def _step_by_checks(self) -> int:
        """Return the index in the timeline a sequence paced by checks has reached."""
        assert self.timeline is not None and self.checks_per_status is not None
        return min(self.checks // self.checks_per_status, len(self.timeline) - 1)

    def audit_trail(self, now: float) -> list[dict[str, str]]:
        """Return the legacy generation's audit trail at ``now``: the entries whose time has come."""
        events = [(self.created_at, "Job initiated")]
        if self.executed_at is not None and self.finishes_at is not None:
            events.append((self.executed_at, "Job execution started"))
            halfway = (self.executed_at + self.finishes_at) / 2
            previous = None
            for start, status in self.timeline or ():
                if status != previous:
                    events.append((start, f"Job status: {status}"))
                previous = status
            events.extend((halfway, "File validated and processed") for _ in self.files)
            if self.failure or self.timeline is None or is_completed(self.timeline[-1][1]):
                events.append((self.finishes_at, self.failure or "Job completed successfully"))
        # An overridden status freezes the natural course of the job at the moment of the override.
        cutoff = now if self.override is None else min(now, self.override[1])
        events = [event for event in events if event[0] <= cutoff]
        if self.override is not None:
            events.append((self.override[1], f"Job status set to {self.override[0]} (emulator override)"))
        # Stable: events at the same moment keep the order they were added in.
        events.sort(key=lambda event: event[0])
        return [{"timestamp": iso(at), "actor": "SYSTEM", "action": action} for at, action in events]

    def summary(self, now: float) -> dict[str, Any]:
        """Return what the admin route ``GET /_emulator/jobs`` shows of the job."""
        return {
            "jobExecutionId": self.job_id,
            "workflowId": self.workflow.workflow_id,
            "title": self.title,
            "description": self.description,
            "status": self.status(now),
            "createdAt": iso(self.created_at),
            "executedAt": None if self.executed_at is None else iso(self.executed_at),
            "finishesAt": None if self.finishes_at is None else iso(self.finishes_at),
            "jobPayloadSchemaInstance": self.instance,
            "failure": self.failure,
            "workflowVersion": self.version.number,
            "workflowVersionId": self.version.version_id,
            "callbackUrl": self.callback_url,
            **self.initiated_with,
        }


@dataclass
class Upload:
    """One issued presigned upload URL, and what was PUT to it."""

    token: str
    signature: str
    file_url: str
    extension: str
    access_scope: str | None
    issued_at: float
    expires_at: float
    # What the current generation's request gave (originalName, workspaceId, workflowId), shown in the
    # summary with the limit and whether a PUT was refused; None for a legacy upload, whose summary is as it was.
    current: dict[str, Any] | None = None
    max_bytes: int | None = None  # the most bytes a PUT may carry; None for no limit
    refused_size: int | None = None  # the bytes of the last PUT refused as too large
    uploaded_at: float | None = None
    size: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    had_service_key: bool | None = None
    had_authorization: bool | None = None

    def summary(self) -> dict[str, Any]:
        """Return what the admin route ``GET /_emulator/uploads`` shows of the upload."""
        return {
            "fileUrl": self.file_url,
            "extension": self.extension,
            "accessScope": self.access_scope,
            "issuedAt": iso(self.issued_at),
            "uploaded": self.uploaded_at is not None,
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "had_service_key": self.had_service_key,
            "had_authorization": self.had_authorization,
            **(
                {}
                if self.current is None
                else {**self.current, "maxBytes": self.max_bytes, "refusedSize": self.refused_size}
            ),
        }


def iso(timestamp: float) -> str:
    """Format a POSIX timestamp as ISO 8601 UTC with a ``Z`` suffix and millisecond precision."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
