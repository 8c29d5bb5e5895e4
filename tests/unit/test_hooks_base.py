"""hooks/base.py: what the sync and the async hook share: the connection type and the retry settings."""

from __future__ import annotations

import re

import pytest

from airflow_provider_opus.exceptions import OpusInvalidArgumentError
from airflow_provider_opus.get_provider_info import get_provider_info
from airflow_provider_opus.hooks.base import OpusBaseHook
from airflow_provider_opus.hooks.opus import OpusAsyncHook, OpusHook
from airflow_provider_opus.retry import RetryPolicy

HOOKS = [OpusHook, OpusAsyncHook]


@pytest.mark.parametrize("hook_class", HOOKS)
def test_both_hooks_share_one_connection_type(hook_class):
    assert issubclass(hook_class, OpusBaseHook)
    assert (hook_class.conn_type, hook_class.default_conn_name, hook_class.conn_name_attr, hook_class.hook_name) == (
        "opus",
        "opus_default",
        "opus_conn_id",
        "Opus",
    )
    (declared,) = get_provider_info()["connection-types"]
    assert (declared["connection-type"], declared["hook-name"]) == (hook_class.conn_type, hook_class.hook_name)


@pytest.mark.parametrize("hook_class", HOOKS)
def test_the_defaults_are_opus_default_and_three_retries_a_second_apart(hook_class):
    hook = hook_class()
    assert hook.opus_conn_id == "opus_default"
    assert hook.timeout is None  # the connection's timeout applies
    assert hook.retry_policy == RetryPolicy(retry_limit=3, retry_delay=1.0)


@pytest.mark.parametrize("hook_class", HOOKS)
def test_the_arguments_reach_the_retry_policy(hook_class):
    hook = hook_class("opus_eu", timeout=5, retry_limit=0, retry_delay=0.25)
    assert (hook.opus_conn_id, hook.timeout) == ("opus_eu", 5)
    assert (hook.retry_policy.retry_limit, hook.retry_policy.retry_delay) == (0, 0.25)
    assert getattr(hook, hook.conn_name_attr) == "opus_eu"  # where Airflow looks for the connection id


@pytest.mark.parametrize("hook_class", HOOKS)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retry_limit": -1}, "retry_limit must be a whole number, 0 or more, got int -1"),
        ({"retry_limit": None}, "retry_limit must be a whole number, 0 or more, got NoneType None"),
        ({"retry_limit": 2.5}, "retry_limit must be a whole number, 0 or more, got float 2.5"),
        ({"retry_delay": -0.5}, "retry_delay must be a number of seconds, 0 or more, got float -0.5"),
        ({"retry_delay": float("nan")}, "retry_delay must be a number of seconds, 0 or more, got float nan"),
        ({"retry_delay": float("inf")}, "retry_delay must be a number of seconds, 0 or more, got float inf"),
    ],
)
def test_bad_retry_settings_are_refused_when_the_hook_is_made(hook_class, kwargs, message):
    # nan was taken (every wait nan), None raised a bare TypeError (#20 item 17).
    with pytest.raises(OpusInvalidArgumentError, match=f"^{re.escape(message)}$"):
        hook_class(**kwargs)
