"""
A local emulator of the Opus REST API, with the storage that its presigned upload URLs and output files point to.

It needs no Airflow: run it with ``python -m airflow_provider_opus.emulator``, in-process with
:class:`OpusEmulator`, or in pytest through the ``opus_emulator`` fixture of
``airflow_provider_opus.emulator.pytest_plugin``. See docs/emulator.md.
"""

from __future__ import annotations

from airflow_provider_opus.emulator.output_files import (
    DEFAULT_OUTPUT_FILE_BYTES,
    expected_output_file,
    iter_output_file,
    output_file_path,
)
from airflow_provider_opus.emulator.server import DEFAULT_SERVICE_KEY, OpusEmulator
from airflow_provider_opus.emulator.workflows import RESULTS_SHAPES, WorkflowConfigError

DEFAULT_WORKFLOW_ID = "B9uGJfZ3CFwOdMKH"
REPORT_WORKFLOW_ID = "DailyReport00001"

__all__ = [
    "DEFAULT_OUTPUT_FILE_BYTES",
    "DEFAULT_SERVICE_KEY",
    "DEFAULT_WORKFLOW_ID",
    "REPORT_WORKFLOW_ID",
    "RESULTS_SHAPES",
    "OpusEmulator",
    "WorkflowConfigError",
    "expected_output_file",
    "iter_output_file",
    "output_file_path",
]
