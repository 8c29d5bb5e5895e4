"""operators/base.py: the arguments, hook and template fields every Opus task shares."""

from __future__ import annotations

import inspect
import re

import pytest
from airflow.sdk import DAG

from airflow_provider_opus.exceptions import OpusInvalidArgumentError
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.operators.base import OpusBaseOperator, OpusJobWaitingOperator
from airflow_provider_opus.operators.opus import (
    OpusExecuteJobOperator,
    OpusGetJobResultsOperator,
    OpusUploadOperator,
)
from airflow_provider_opus.sensors.opus import OpusJobSensor

TASKS = {
    OpusUploadOperator: {"files": ["/data/a.pdf"]},
    OpusExecuteJobOperator: {"workflow_id": "wf"},
    OpusGetJobResultsOperator: {"job_execution_id": "j1"},
    OpusJobSensor: {"job_execution_id": "j1"},
}


@pytest.mark.parametrize("task_class", TASKS)
def test_every_task_takes_the_shared_arguments_once(task_class):
    assert issubclass(task_class, OpusBaseOperator)
    task = task_class(task_id="t", opus_conn_id="c1", opus_retry_limit=5, opus_retry_delay=0.25, **TASKS[task_class])
    assert (task.opus_conn_id, task.opus_retry_limit, task.opus_retry_delay) == ("c1", 5, 0.25)
    assert task.ui_color == OpusBaseOperator.ui_color
    # Declared in the base class only, so the subclasses cannot drift apart.
    own_parameters = inspect.signature(vars(task_class)["__init__"]).parameters
    assert not {"opus_conn_id", "opus_retry_limit", "opus_retry_delay"} & set(own_parameters)


@pytest.mark.parametrize("task_class", TASKS)
def test_the_shared_arguments_come_from_default_args(task_class):
    with DAG("d", schedule=None, default_args={"opus_conn_id": "from_defaults", "opus_retry_limit": 0}):
        task = task_class(task_id="t", **TASKS[task_class])
    assert (task.opus_conn_id, task.opus_retry_limit) == ("from_defaults", 0)


@pytest.mark.parametrize("task_class", TASKS)
def test_opus_conn_id_is_templated_and_the_hook_uses_the_rendered_value(task_class):
    assert "opus_conn_id" in task_class.template_fields
    task = task_class(task_id="t", opus_conn_id="{{ params.conn }}", **TASKS[task_class])
    task.render_template_fields({"params": {"conn": "opus_eu"}})
    assert task.opus_conn_id == "opus_eu"
    assert isinstance(task.hook, OpusHook)
    assert (task.hook.opus_conn_id, task.hook.retry_policy.retry_limit) == ("opus_eu", task.opus_retry_limit)


@pytest.mark.parametrize("task_class", TASKS)
@pytest.mark.parametrize(
    ("shared", "message"),
    [
        ({"opus_conn_id": None}, "opus_conn_id must be a non-empty string, got NoneType None"),
        ({"opus_conn_id": 5}, "opus_conn_id must be a non-empty string, got int 5"),
        ({"opus_retry_limit": "3"}, "opus_retry_limit must be a whole number, 0 or more, got '3'"),
        ({"opus_retry_limit": -1}, "opus_retry_limit must be a whole number, 0 or more, got int -1"),
        ({"opus_retry_limit": True}, "opus_retry_limit must be a whole number, 0 or more, got bool True"),
        ({"opus_retry_delay": "1"}, "opus_retry_delay must be a number of seconds, 0 or more, got '1'"),
        ({"opus_retry_delay": float("nan")}, "opus_retry_delay must be a number of seconds, 0 or more, got float nan"),
    ],
)
def test_shared_arguments_of_the_wrong_type_fail_when_the_dag_is_parsed(task_class, shared, message):
    # They reached the hook at execute as a bare ValueError or TypeError, which Airflow retries.
    with pytest.raises(OpusInvalidArgumentError, match=f"Task 't': {re.escape(message)}"):
        task_class(task_id="t", **shared, **TASKS[task_class])


def test_the_waiting_tasks_share_one_wait():
    assert issubclass(OpusExecuteJobOperator, OpusJobWaitingOperator)
    assert issubclass(OpusJobSensor, OpusJobWaitingOperator)
    assert not issubclass(OpusUploadOperator, OpusJobWaitingOperator)


def test_get_conn_is_the_hooks_settings(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", '{"conn_type": "opus", "password": "k-123456789"}')
    hook = OpusHook()
    settings = hook.get_conn()
    assert settings is hook.settings
    assert settings.api_headers["x-service-key"] == "k-123456789"
