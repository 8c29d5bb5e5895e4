"""operators/opus.py: the three operators, importable from one module as from their own."""

from __future__ import annotations

from airflow_provider_opus.operators import execute, opus, results, upload


def test_the_three_operators_are_re_exported_as_they_are():
    assert opus.__all__ == ["OpusExecuteJobOperator", "OpusGetJobResultsOperator", "OpusUploadOperator"]
    assert opus.OpusExecuteJobOperator is execute.OpusExecuteJobOperator
    assert opus.OpusGetJobResultsOperator is results.OpusGetJobResultsOperator
    assert opus.OpusUploadOperator is upload.OpusUploadOperator
