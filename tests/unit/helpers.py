"""What the unit tests driving OpusHook against ``opus_http`` share: a fake Opus host, its key, a fast hook."""

from __future__ import annotations

from airflow_provider_opus.hooks.opus import OpusHook

KEY = "unit-test-service-key-123456"
BASE = "https://opus.test"


def hook(**kwargs) -> OpusHook:
    return OpusHook(retry_delay=0.01, **kwargs)
