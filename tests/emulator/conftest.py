"""Fixtures of the emulator's tests (the ``emulator`` fixture itself is in tests/conftest.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.emulator.helpers import Api

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_opus.emulator import OpusEmulator


@pytest.fixture
def api(emulator: OpusEmulator) -> Iterator[Api]:
    client = Api(emulator)
    yield client
    client.session.close()
