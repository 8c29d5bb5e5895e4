"""sensors/opus.py: OpusJobSensor against the emulator, over real loopback HTTP: poke, defer, resume."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, TaskDeferred

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
