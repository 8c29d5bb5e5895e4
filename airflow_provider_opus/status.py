"""What an Opus job status means: the one set of status rules, for every wait and for reattach.

The API reference lists statuses only by example ("e.g., IN PROGRESS, COMPLETED, FAILED"),
so the provider reads them defensively:

* statuses are compared normalised: surrounding whitespace trimmed, case ignored, and ``_``,
  ``-`` and runs of spaces all equal to one space (``in_progress`` is ``IN PROGRESS``);
  messages show a status as Opus spelled it;
* only ``COMPLETED`` is success;
* :data:`FAILED_STATUSES` are final and fail the task;
* :data:`RUNNING_STATUSES` keep the wait going, and so does a status in no list: the task
  logs a warning the first time it sees one and waits on until its deadline. An unknown
  status is never success and never given up on early;
* :data:`NOT_STARTED_STATUSES` (a job initiated but not executed) keep a wait going too;
  on a task retry such a job is executed under its id instead of initiating another.

DAG authors add their own words with ``running_statuses`` and ``failed_statuses`` on the
execute operator and the sensor (which hand them to the trigger) and on the results operator;
see :class:`StatusRules`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_opus.exceptions import OpusInvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Iterable

#: The one status that means success.
COMPLETED = "COMPLETED"

#: Final statuses that fail the task: the documented ``FAILED`` and the words services use for an ended job.
FAILED_STATUSES: frozenset[str] = frozenset(
    {
        "FAILED",
        "FAILURE",
        "ERROR",
        "ERRORED",
        "CANCELLED",
        "CANCELED",
        "ABORTED",
        "REJECTED",
        "EXPIRED",
        "TIMED OUT",
        "TIMEOUT",
        "TERMINATED",
        "KILLED",
        "STOPPED",
        "DECLINED",
    }
)

#: Statuses of a job that is executing or waiting (for a worker, a schedule or a human review).
RUNNING_STATUSES: frozenset[str] = frozenset(
    {
        "IN PROGRESS",
        "QUEUED",
        "PENDING",
        "RUNNING",
        "STARTED",
        "PROCESSING",
        "SCHEDULED",
        "WAITING",
        "IN REVIEW",
        "AWAITING REVIEW",
        "PENDING REVIEW",
        "UNDER REVIEW",
        "AWAITING APPROVAL",
        "PENDING APPROVAL",
        "ON HOLD",
        "PAUSED",
        "RETRYING",
        "EXECUTING",
        "SUBMITTED",
        "ACCEPTED",
    }
)

#: Statuses of a job that was initiated but not executed yet.
NOT_STARTED_STATUSES: frozenset[str] = frozenset({"NOT STARTED", "INITIATED", "CREATED", "NEW", "DRAFT"})

_SEPARATORS = re.compile(r"[\s_-]+")


class _WarningLog(Protocol):
    def warning(self, message: Any, /, *args: Any) -> Any: ...


def normalize_status(status: str) -> str:
    """
    Return a status as the rules compare it: trimmed, upper case, ``_``/``-``/spaces as one space.

    :param status: a status as Opus sent it.
    """
    return _SEPARATORS.sub(" ", status.strip()).strip().upper()


class JobOutcome(enum.Enum):
    """What a status means for a task waiting on the job."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RUNNING = "running"
    NOT_STARTED = "not started"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        """Whether the job has ended: only success and failure are final."""
        return self in (JobOutcome.SUCCEEDED, JobOutcome.FAILED)


def _normalized_words(words: Iterable[str] | None, argument: str) -> frozenset[str]:
    if words is None:
        return frozenset()
    if isinstance(words, str):
        raise OpusInvalidArgumentError(f"{argument} must be a list of status strings, got the string {words!r}")
    normalized = set()
    for word in words:
        if not isinstance(word, str) or not word.strip():
            raise OpusInvalidArgumentError(f"{argument} must hold non-empty status strings, got {word!r}")
        if normalize_status(word) == COMPLETED:
            raise OpusInvalidArgumentError(
                f"{argument} cannot hold {word!r}: COMPLETED always means success and nothing else does"
            )
        normalized.add(normalize_status(word))
    return frozenset(normalized)


@dataclass(frozen=True)
class StatusRules:
    """
    Classify job statuses: the built-in words plus a DAG author's own.

    :param running_statuses: more statuses that mean the job is still running or waiting.
    :param failed_statuses: more statuses that mean the job ended without success. A DAG
        author's words win over the built-in lists, so a built-in word can be reclassified.
    :raises OpusInvalidArgumentError: a word that is not a non-empty string, ``COMPLETED``, or in both lists.
    """

    running_statuses: Iterable[str] | None = None
    failed_statuses: Iterable[str] | None = None
    _running: frozenset[str] = field(init=False, repr=False)
    _failed: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        running = _normalized_words(self.running_statuses, "running_statuses")
        failed = _normalized_words(self.failed_statuses, "failed_statuses")
        if both := sorted(running & failed):
            raise OpusInvalidArgumentError(
                f"running_statuses and failed_statuses both hold {', '.join(both)}: give each status once"
            )
        object.__setattr__(self, "_running", running)
        object.__setattr__(self, "_failed", failed)

    def outcome(self, status: str) -> JobOutcome:
        """
        Return what ``status`` means for a waiting task.

        :param status: a status as Opus sent it.
        """
        word = normalize_status(status)
        if word == COMPLETED:
            return JobOutcome.SUCCEEDED
        if word in self._failed:
            return JobOutcome.FAILED
        if word in self._running:
            return JobOutcome.RUNNING
        if word in FAILED_STATUSES:
            return JobOutcome.FAILED
        if word in RUNNING_STATUSES:
            return JobOutcome.RUNNING
        if word in NOT_STARTED_STATUSES:
            return JobOutcome.NOT_STARTED
        return JobOutcome.UNKNOWN

    def poll_outcome(self, job_execution_id: str, status: str, warned: set[str], log: _WarningLog) -> JobOutcome:
        """
        Return what a polled status means, warning once per wait about a status in no list.

        :param job_execution_id: the job, for the warning.
        :param status: the status as Opus sent it.
        :param warned: the unknown statuses this wait has already warned about; updated.
        :param log: where the warning goes (the task's or the trigger's log).
        """
        outcome = self.outcome(status)
        if outcome is JobOutcome.UNKNOWN and status not in warned:
            warned.add(status)
            log.warning("%s", unknown_status_warning(job_execution_id, status))
        return outcome

    def is_final(self, status: str) -> bool:
        """
        Tell whether the job has ended (succeeded or failed); running, not started and unknown are not final.

        :param status: a status as Opus sent it.
        """
        return self.outcome(status).is_final

    def is_success(self, status: str) -> bool:
        """
        Tell whether ``status`` is success: ``COMPLETED`` in any case or spelling, nothing else.

        :param status: a status as Opus sent it.
        """
        return self.outcome(status) is JobOutcome.SUCCEEDED

    @property
    def added_running(self) -> list[str]:
        """The DAG author's running statuses, normalised, as a plain list (serialisable into a trigger)."""
        return sorted(self._running)

    @property
    def added_failed(self) -> list[str]:
        """The DAG author's failed statuses, normalised, as a plain list (serialisable into a trigger)."""
        return sorted(self._failed)


#: The built-in rules, without a DAG author's words.
DEFAULT_STATUS_RULES = StatusRules()


def unknown_status_warning(job_execution_id: str, status: str) -> str:
    """
    Return the warning for a status in no list: the wait goes on, and how to classify the status.

    :param job_execution_id: the job.
    :param status: the status as Opus sent it.
    """
    return (
        f"Opus job {job_execution_id} reports status {status!r}, which this provider does not know: "
        "waiting on until the job reports COMPLETED or a failure, or the deadline passes. If it is "
        f"final, pass failed_statuses=[{status!r}]; if it means the job is still running, pass "
        f"running_statuses=[{status!r}] (on OpusExecuteJobOperator or OpusJobSensor)."
    )
