"""What the unit tests driving OpusHook against ``opus_http`` share: a fake Opus host, its key, a fast hook."""

from __future__ import annotations

import aiohttp
import pytest

from airflow_provider_opus.hooks.opus import OpusHook

KEY = "unit-test-service-key-123456"
BASE = "https://opus.test"

#: aiohttp 3.10+ says a connect timeout with ConnectionTimeoutError; 3.9 (the floor) has no such class and
#: raises a ServerTimeoutError that cannot be told from a read timeout, so a test of the difference skips there.
needs_connect_timeout_class = pytest.mark.skipif(
    not hasattr(aiohttp, "ConnectionTimeoutError"), reason="aiohttp 3.9 has no ConnectionTimeoutError"
)


def connect_timeout() -> aiohttp.ServerTimeoutError:
    """Return the error the installed aiohttp raises when a connect times out."""
    return getattr(aiohttp, "ConnectionTimeoutError", aiohttp.ServerTimeoutError)("connect")


def hook(**kwargs) -> OpusHook:
    return OpusHook(retry_delay=0.01, **kwargs)
