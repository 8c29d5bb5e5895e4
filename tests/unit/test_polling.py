"""The poll-interval rule shared by the trigger, the blocking wait and the sensor."""

from __future__ import annotations

import pytest

from airflow_provider_opus.exceptions import OpusInvalidArgumentError
from airflow_provider_opus.polling import check_poll_intervals, next_poll_wait


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
