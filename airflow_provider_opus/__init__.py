"""Apache Airflow provider for the Opus job platform."""

from __future__ import annotations

__version__ = "0.1.0"
