"""An autouse fixture for test folders whose async hooks read connections: no test sees settings another kept.

The connection settings the async hooks read are kept for the whole process (connection_cache.py), and
tests point ``opus_default`` at servers of their own; a folder's conftest imports this fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_opus.connection_cache import connection_settings_cache


@pytest.fixture(autouse=True)
def fresh_connection_settings() -> Iterator[None]:
    """Nothing kept by an earlier test; nothing left for a later one."""
    connection_settings_cache.clear()
    yield
    connection_settings_cache.clear()
