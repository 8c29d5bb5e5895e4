"""The status rules: what each Opus job status means for a waiting task and for reattach."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_opus.exceptions import OpusInvalidArgumentError
from airflow_provider_opus.status import (
    DEFAULT_STATUS_RULES,
    FAILED_STATUSES,
    NOT_STARTED_STATUSES,
    RUNNING_STATUSES,
    JobOutcome,
    StatusRules,
    normalize_status,
)


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("IN PROGRESS", "IN PROGRESS"),
        ("in_progress", "IN PROGRESS"),
        ("  In-Progress \n", "IN PROGRESS"),
        ("in   progress", "IN PROGRESS"),
        ("in _- progress", "IN PROGRESS"),
        ("Completed", "COMPLETED"),
    ],
)
def test_statuses_are_compared_normalised(given, normalized):
    assert normalize_status(given) == normalized


@pytest.mark.parametrize("status", ["COMPLETED", "completed", " Completed ", "COMPLETED\t"])
def test_only_completed_is_success_in_any_spelling(status):
    assert DEFAULT_STATUS_RULES.outcome(status) is JobOutcome.SUCCEEDED
    assert DEFAULT_STATUS_RULES.is_success(status) and DEFAULT_STATUS_RULES.is_final(status)


@pytest.mark.parametrize(
    "status", ["FAILED", "Cancelled", "canceled", "ERROR", "aborted", "Rejected", "EXPIRED", "timed_out", "TERMINATED"]
)
def test_ended_words_are_final_failures(status):
    assert DEFAULT_STATUS_RULES.outcome(status) is JobOutcome.FAILED
    assert DEFAULT_STATUS_RULES.is_final(status) and not DEFAULT_STATUS_RULES.is_success(status)


@pytest.mark.parametrize(
    "status",
    [
        *["IN PROGRESS", "In Progress", "queued", "PENDING", "running", "Started", "PROCESSING", "scheduled"],
        *["waiting", "IN REVIEW", "awaiting-review", "Awaiting_Review"],
    ],
)
def test_waiting_words_keep_the_wait_going(status):
    assert DEFAULT_STATUS_RULES.outcome(status) is JobOutcome.RUNNING
    assert not DEFAULT_STATUS_RULES.is_final(status)


def test_an_initiated_job_is_not_started_and_not_final():
    assert DEFAULT_STATUS_RULES.outcome("NOT STARTED") is JobOutcome.NOT_STARTED
    assert not DEFAULT_STATUS_RULES.is_final("not_started")


@pytest.mark.parametrize("status", ["WEIRD", "ARCHIVED?", "", "COMPLETED WITH WARNINGS", "SUCCESS"])
def test_an_unknown_status_is_neither_final_nor_success(status):
    assert DEFAULT_STATUS_RULES.outcome(status) is JobOutcome.UNKNOWN
    assert not DEFAULT_STATUS_RULES.is_final(status) and not DEFAULT_STATUS_RULES.is_success(status)


def test_the_built_in_lists_do_not_overlap():
    lists = [FAILED_STATUSES, RUNNING_STATUSES, NOT_STARTED_STATUSES, {"COMPLETED"}]
    for i, first in enumerate(lists):
        for second in lists[i + 1 :]:
            assert not set(first) & set(second)
    assert all(normalize_status(word) == word for words in lists for word in words)


def test_a_dag_authors_words_extend_and_override_the_built_in_lists():
    rules = StatusRules(running_statuses=["Awaiting Sign-Off", "stopped"], failed_statuses=["on_hold"])
    assert rules.outcome("AWAITING SIGN OFF") is JobOutcome.RUNNING
    assert rules.outcome("Stopped") is JobOutcome.RUNNING  # built in as failed
    assert rules.outcome("ON HOLD") is JobOutcome.FAILED  # built in as running
    assert rules.outcome("COMPLETED") is JobOutcome.SUCCEEDED
    assert rules.added_running == ["AWAITING SIGN OFF", "STOPPED"]
    assert rules.added_failed == ["ON HOLD"]
    assert StatusRules(rules.added_running, rules.added_failed).outcome("awaiting_sign_off") is JobOutcome.RUNNING


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"running_statuses": "QUEUED"}, "running_statuses must be a list of status strings"),
        ({"failed_statuses": [""]}, "failed_statuses must hold non-empty status strings"),
        ({"failed_statuses": [3]}, "failed_statuses must hold non-empty status strings"),
        ({"running_statuses": ["completed"]}, "COMPLETED always means success"),
        ({"failed_statuses": ["Completed "]}, "COMPLETED always means success"),
        ({"running_statuses": ["X"], "failed_statuses": ["x"]}, "both hold X"),
    ],
)
def test_bad_words_are_refused_with_the_argument_named(kwargs, message):
    with pytest.raises(OpusInvalidArgumentError, match=message):
        StatusRules(**kwargs)


def test_an_unknown_status_is_warned_about_once_per_wait(caplog):
    log = logging.getLogger("opus-test")
    warned: set[str] = set()
    with caplog.at_level(logging.WARNING, logger="opus-test"):
        outcomes = [
            DEFAULT_STATUS_RULES.poll_outcome("j1", status, warned, log) for status in ["X", "X", "QUEUED", "X"]
        ]
    assert outcomes == [JobOutcome.UNKNOWN, JobOutcome.UNKNOWN, JobOutcome.RUNNING, JobOutcome.UNKNOWN]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "status 'X'" in warnings[0]
    assert "failed_statuses=['X']" in warnings[0] and "running_statuses=['X']" in warnings[0]
