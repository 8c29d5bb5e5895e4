"""The poll-interval rule shared by the trigger, the blocking wait and the sensor."""

from __future__ import annotations

import pytest

from airflow_provider_opus.exceptions import OpusInvalidArgumentError
from airflow_provider_opus.polling import (
    MAX_WAIT_SECONDS,
    PollStep,
    check_poll_intervals,
    check_timeout,
    next_poll,
    next_poll_wait,
)


def test_without_a_maximum_the_interval_is_fixed():
    assert [next_poll_wait(30, None, waited) for waited in (0, 600, 86_400)] == [30, 30, 30]


@pytest.mark.parametrize(
    ("waited", "expected"),
    [(0, 30), (299, 30), (300, 30), (1_000, 100), (36_000, 3_600), (864_000, 3_600)],
)
def test_with_a_maximum_the_wait_is_a_tenth_of_the_time_waited_within_bounds(waited, expected):
    assert next_poll_wait(30, 3_600, waited) == pytest.approx(expected)


def test_a_day_long_job_costs_a_hundred_checks_instead_of_thousands():
    def checks_until(job_seconds, max_poll_interval):
        waited, checks = 0.0, 0
        while waited < job_seconds:
            waited += next_poll_wait(30, max_poll_interval, waited)
            checks += 1
        return checks

    assert checks_until(86_400, None) == 2_880
    assert checks_until(86_400, 3_600) < 100
    assert checks_until(120, 3_600) == checks_until(120, None) == 4  # short jobs: no slower


@pytest.mark.parametrize(
    ("poll_interval", "max_poll_interval", "message"),
    [
        (0, None, "poll_interval must be a positive number of seconds, got 0"),
        (-1, 60, "poll_interval must be a positive number of seconds"),
        (30, 10, r"max_poll_interval must be None \(a fixed interval\) or at least poll_interval \(30 s\), got 10"),
        ("30", None, "poll_interval must be a number of seconds, got '30'"),
        (30, "3600", "max_poll_interval must be a number of seconds, got '3600'"),
        (30, True, "max_poll_interval must be a number of seconds, got True"),
    ],
)
def test_bad_intervals_are_named(poll_interval, max_poll_interval, message):
    with pytest.raises(OpusInvalidArgumentError, match=message):
        check_poll_intervals(poll_interval, max_poll_interval)


@pytest.mark.parametrize(
    ("waited", "remaining", "expected"),
    [
        (0, None, PollStep(30, final=False)),  # no deadline: never final
        (0, 100, PollStep(30, final=False)),  # the deadline is further than one wait
        (0, 30, PollStep(30, final=True)),  # the next check falls on the deadline
        (0, 12.5, PollStep(12.5, final=True)),  # the wait is cut to the deadline
        (0, -5, PollStep(0.0, final=True)),  # past the deadline: check at once, for the last time
        (10_000, 500, PollStep(500, final=True)),  # the grown interval is cut too
        (10_000, 5_000, PollStep(1_000, final=False)),
    ],
)
def test_next_poll_cuts_the_wait_at_the_deadline_and_says_when_it_is_final(waited, remaining, expected):
    assert next_poll(30, 3_600, waited, remaining) == expected


@pytest.mark.parametrize(
    ("poll_interval", "max_poll_interval", "message"),
    [
        (1e300, None, r"poll_interval must be at most 31536000 s \(365 days\), got 1e\+300"),
        (float("inf"), None, r"poll_interval must be at most 31536000 s \(365 days\), got inf"),
        (10**400, None, r"poll_interval must be at most 31536000 s \(365 days\), got 1000"),
        (10**5000, None, r"poll_interval must be at most 31536000 s \(365 days\), got a huge int"),
        (float("nan"), None, "poll_interval must be a positive number of seconds, got nan"),
        (30, float("inf"), r"max_poll_interval must be at most 31536000 s \(365 days\), got inf"),
        (30, 1e300, r"max_poll_interval must be at most 31536000 s \(365 days\), got 1e\+300"),
        (30, float("nan"), r"max_poll_interval must be None \(a fixed interval\) or at least poll_interval"),
    ],
    ids=["1e300", "inf", "int 1e400", "int 1e5000", "nan", "max inf", "max 1e300", "max nan"],
)
def test_intervals_beyond_what_sleep_and_datetime_take_are_refused(poll_interval, max_poll_interval, message):
    with pytest.raises(OpusInvalidArgumentError, match=message):
        check_poll_intervals(poll_interval, max_poll_interval)


def test_the_longest_interval_allowed_fits_a_reschedule_date():
    import datetime as dt

    check_poll_intervals(MAX_WAIT_SECONDS, MAX_WAIT_SECONDS)
    # Reschedule mode adds the interval to now; 1e300 s overflowed here.
    assert dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=MAX_WAIT_SECONDS) < dt.datetime(
        dt.MAXYEAR, 1, 1, tzinfo=dt.timezone.utc
    )


@pytest.mark.parametrize(
    "timeout",
    [float("nan"), float("inf"), 1e300, 10**400, 0, -1, MAX_WAIT_SECONDS + 1],
    ids=["nan", "inf", "1e300", "int 1e400", "zero", "negative", "a year and a second"],
)
def test_timeouts_must_be_positive_and_bounded(timeout):
    with pytest.raises(
        OpusInvalidArgumentError,
        match=r"Task 't': timeout must be positive and at most 31536000 s \(365 days\), or None; got ",
    ):
        check_timeout(timeout, task_id="t")


@pytest.mark.parametrize("timeout", ["60", True, [60]])
def test_timeouts_must_be_numbers(timeout):
    with pytest.raises(OpusInvalidArgumentError, match=r"^timeout must be a number of seconds or None, got "):
        check_timeout(timeout)


@pytest.mark.parametrize("timeout", [None, 0.5, 60, MAX_WAIT_SECONDS])
def test_good_timeouts_pass(timeout):
    check_timeout(timeout)
