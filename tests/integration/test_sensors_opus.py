"""sensors/opus.py: OpusJobSensor against the emulator, over real loopback HTTP: poke, defer, resume."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowTaskTimeout,
    TaskDeferred,
)

from airflow_provider_opus.exceptions import OpusInvalidArgumentError, OpusJobFailedError
from airflow_provider_opus.sensors.opus import OpusJobSensor
from tests.integration.helpers import assert_grew_from_30_to_600, execute_op, running_job
from tests.support.task_context import make_context

pytestmark = pytest.mark.integration


def sensor(**kwargs) -> OpusJobSensor:
    return OpusJobSensor(task_id="wait", poke_interval=0.05, opus_retry_delay=0.01, **kwargs)


def test_sensor_pokes_until_completed(emulator):
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    s = sensor(job_execution_id=job_id)
    assert s.poke(make_context()) is False
    time.sleep(0.5)
    assert s.poke(make_context()) is True


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
def test_sensor_fails_without_retries_on_any_other_final_status(emulator, status):
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    emulator.set_job_status(job_id, status)
    with pytest.raises(OpusJobFailedError, match=repr(status)) as info:
        sensor(job_execution_id=job_id).poke(make_context())
    assert isinstance(info.value, AirflowFailException)
    assert "Job initiated" in str(info.value)  # the audit tail is in the message


def test_deferrable_sensor_checks_once_then_defers(emulator):
    emulator.configure(job_duration=30)
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    with pytest.raises(TaskDeferred) as info:
        sensor(job_execution_id=job_id, deferrable=True, timeout=120).execute(make_context())
    _, kwargs = info.value.trigger.serialize()
    assert kwargs["job_execution_id"] == job_id
    assert kwargs["end_time"] == pytest.approx(time.time() + 120, abs=5)
    assert len(emulator.requests("get_job_status")) == 1


def test_sensor_poke_mode_grows_its_interval_with_max_poll_interval(emulator, monkeypatch):
    import airflow.sdk.bases.sensor as base_sensor_module

    job_id, clock = running_job(emulator)
    monkeypatch.setattr(base_sensor_module, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    s = OpusJobSensor(task_id="wait", job_execution_id=job_id, poke_interval=30, max_poll_interval=600)
    s.execute(make_context())
    assert_grew_from_30_to_600(clock.waits)


@pytest.mark.parametrize("max_poll_interval", [None, 600])
def test_sensor_poke_mode_makes_its_last_check_at_the_timeout(emulator, monkeypatch, max_poll_interval):
    # The deadline rule of the trigger and the blocking wait (polling.next_poll): the wait before
    # the last check is cut to the timeout, not a whole poke_interval past it.
    import airflow.sdk.bases.sensor as base_sensor_module

    job_id, clock = running_job(emulator)
    monkeypatch.setattr(base_sensor_module, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    s = OpusJobSensor(
        task_id="wait", job_execution_id=job_id, poke_interval=30, timeout=45, max_poll_interval=max_poll_interval
    )
    real_poke = s.poke

    def poke_taking_time(context):
        clock.now += 0.1  # a status check takes time, as it does on a real clock
        return real_poke(context)

    monkeypatch.setattr(s, "poke", poke_taking_time)
    with pytest.raises(AirflowSensorTimeout):
        s.execute(make_context())
    assert clock.waits == [30, pytest.approx(14.8)]  # checks at 0.1, 30.2 and 45 s
    assert len(emulator.requests("get_job_status")) == 3


def test_deferrable_sensor_and_operator_hand_max_poll_interval_to_the_trigger(emulator):
    emulator.configure(job_duration=30)
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    with pytest.raises(TaskDeferred) as info:
        sensor(job_execution_id=job_id, deferrable=True, max_poll_interval=600).execute(make_context())
    assert info.value.trigger.serialize()[1]["max_poll_interval"] == 600
    with pytest.raises(TaskDeferred) as info:
        execute_op(deferrable=True, max_poll_interval=900).execute(make_context())
    assert info.value.trigger.serialize()[1]["max_poll_interval"] == 900


def test_sensor_rejects_max_poll_interval_with_exponential_backoff():
    with pytest.raises(OpusInvalidArgumentError, match="Task 'wait': give max_poll_interval or exponential_backoff"):
        sensor(job_execution_id="J", max_poll_interval=600, exponential_backoff=True)
    with pytest.raises(OpusInvalidArgumentError, match="at least poke_interval"):
        sensor(job_execution_id="J", max_poll_interval=0.01)


def test_deferrable_sensor_on_a_finished_job_does_not_defer(emulator):
    emulator.configure(job_duration=0)
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    assert sensor(job_execution_id=job_id, deferrable=True).execute(make_context()) is None


def test_sensor_execute_complete_fails_closed(emulator):
    with pytest.raises(OpusJobFailedError):
        sensor(job_execution_id="J").execute_complete(
            make_context(), {"status": "failed", "job_execution_id": "J", "opus_status": "FAILED"}
        )
    with pytest.raises(AirflowSensorTimeout, match="Opus has no cancel call: job J keeps running"):
        sensor(job_execution_id="J").execute_complete(
            make_context(), {"status": "timeout", "job_execution_id": "J", "opus_status": "IN PROGRESS"}
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": float("nan")}, r"timeout must be positive and at most 31536000 s \(365 days\), or None; got nan"),
        ({"timeout": 1e300}, r"timeout must be positive and at most 31536000 s \(365 days\), or None; got 1e\+300"),
        ({"timeout": "60"}, "timeout must be a number of seconds or None, got '60'"),
        ({"poke_interval": 1e300}, r"poke_interval must be at most 31536000 s \(365 days\), got 1e\+300"),
        ({"poke_interval": float("nan")}, "poke_interval must be a positive number of seconds, got nan"),
        ({"poke_interval": "30"}, "poke_interval must be a number of seconds, got '30'"),
    ],
)
def test_sensor_wait_arguments_are_named_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(OpusInvalidArgumentError, match=rf"^Task 'wait': {message}$"):
        OpusJobSensor(task_id="wait", job_execution_id="job", **kwargs)


def test_sensor_takes_timedeltas_like_any_airflow_sensor():
    from datetime import timedelta

    s = OpusJobSensor(
        task_id="wait", job_execution_id="job", timeout=timedelta(hours=2), poke_interval=timedelta(minutes=1)
    )
    assert (s.timeout, s.poke_interval) == (7200, 60)
    with pytest.raises(OpusInvalidArgumentError, match=r"timeout must be positive and at most 31536000 s"):
        OpusJobSensor(task_id="wait", job_execution_id="job", timeout=timedelta(days=400))


def test_deferred_sensor_ends_at_execution_timeout_when_it_comes_first(emulator):
    emulator.configure(job_duration=30)
    job_id = execute_op(wait_for_completion=False).execute(make_context())
    context = make_context()
    context["ti"].start_date = datetime.now(timezone.utc) - timedelta(seconds=5)
    waiting = sensor(job_execution_id=job_id, deferrable=True, timeout=600, execution_timeout=timedelta(seconds=20))
    with pytest.raises(TaskDeferred) as info:
        waiting.execute(context)
    assert info.value.kwargs["limit"] == "execution_timeout"
    end_time = info.value.trigger.serialize()[1]["end_time"]
    assert end_time == pytest.approx(context["ti"].start_date.timestamp() + 20, abs=0.001)


def test_sensor_timeout_errors_name_the_limit_that_passed(emulator):
    event = {"status": "timeout", "job_execution_id": "J", "opus_status": "IN PROGRESS", "message": "deadline"}
    waiting = sensor(job_execution_id="J", execution_timeout=timedelta(seconds=20))
    assert OpusJobSensor(task_id="w", job_execution_id="J").timeout == 7 * 24 * 3600
    with pytest.raises(AirflowTaskTimeout, match=r"execution_timeout \(0:00:20\) passed: .*job J keeps running"):
        waiting.execute_complete(make_context(), event, limit="execution_timeout")
    # Its own timeout fails as in poke and reschedule mode: AirflowSensorTimeout, no retries.
    with pytest.raises(AirflowSensorTimeout, match="job J keeps running"):
        waiting.execute_complete(make_context(), event, limit="timeout")
    # A task the provider deferred before the argument's rename resumes with its old name.
    with pytest.raises(AirflowTaskTimeout):
        waiting.execute_complete(make_context(), event, deadline="execution_timeout")


@pytest.mark.parametrize(
    ("job_id", "message"),
    [
        (None, "job_execution_id must be a non-empty string, got NoneType None"),
        (42, "job_execution_id must be a non-empty string, got int 42"),
    ],
)
def test_a_job_id_of_the_wrong_type_fails_when_the_dag_is_parsed(job_id, message):
    with pytest.raises(OpusInvalidArgumentError, match=re.escape(message)):
        OpusJobSensor(task_id="s", job_execution_id=job_id)


def test_a_job_id_that_is_not_one_path_segment_calls_nothing(emulator):
    # A job id ".." reached Opus as GET /status.
    with pytest.raises(OpusInvalidArgumentError, match=r"job_execution_id '\.\.' cannot be an id"):
        OpusJobSensor(task_id="s", job_execution_id="..").poke(make_context())
    assert emulator.requests() == []
