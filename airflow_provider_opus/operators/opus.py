"""
The provider's operators, importable from one module.

Each lives in a module of its own: :mod:`~airflow_provider_opus.operators.upload`,
:mod:`~airflow_provider_opus.operators.execute` and :mod:`~airflow_provider_opus.operators.results`.
"""

from __future__ import annotations

from airflow_provider_opus.operators.execute import OpusExecuteJobOperator
from airflow_provider_opus.operators.results import OpusGetJobResultsOperator
from airflow_provider_opus.operators.upload import OpusUploadOperator

__all__ = ["OpusExecuteJobOperator", "OpusGetJobResultsOperator", "OpusUploadOperator"]
