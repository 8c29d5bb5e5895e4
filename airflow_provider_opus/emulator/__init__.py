"""
A local emulator of the Opus REST API, with the storage that its presigned upload URLs and output files point to.

It needs no Airflow: run it with ``python -m airflow_provider_opus.emulator``, in-process with
:class:`OpusEmulator`, or in pytest through the ``opus_emulator`` fixture of
``airflow_provider_opus.emulator.pytest_plugin``. It serves either generation of the Opus API
(``api="current"``, the default, or ``api="legacy"``). See docs/emulator.md.
"""

from __future__ import annotations

from airflow_provider_opus.emulator.generations import API_GENERATIONS, DEFAULT_API, MAX_UPLOAD_BYTES
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
#: The bundled workflow with versions 1 and 2 (and an inactive 3), whose inputs differ (current generation only).
VERSIONED_WORKFLOW_ID = "ContractCheck001"
#: The bundled workflow in the v2 graph form, with a UUID id (current generation only).
GRAPH_WORKFLOW_ID = "5b0c9a7e-2f4d-4c1a-9e3b-7d8f6a1c2e40"

__all__ = [
    "API_GENERATIONS",
    "DEFAULT_API",
    "DEFAULT_OUTPUT_FILE_BYTES",
    "DEFAULT_SERVICE_KEY",
    "DEFAULT_WORKFLOW_ID",
    "GRAPH_WORKFLOW_ID",
    "MAX_UPLOAD_BYTES",
    "REPORT_WORKFLOW_ID",
    "RESULTS_SHAPES",
    "VERSIONED_WORKFLOW_ID",
    "OpusEmulator",
    "WorkflowConfigError",
    "expected_output_file",
    "iter_output_file",
    "output_file_path",
]
