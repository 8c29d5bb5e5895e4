"""Fixtures of every integration test."""

from __future__ import annotations

from tests.support.settings_cache import fresh_connection_settings

__all__ = ["fresh_connection_settings"]  # autouse: each test reads its own connection
