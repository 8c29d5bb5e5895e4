"""links/opus.py in a real task run: a try that fails before it stores the link logs no "XCom not found" ERROR."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from tests.integration.helpers import run_dag_file

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_opus.emulator import OpusEmulator

pytestmark = pytest.mark.integration

DAG_FILE = textwrap.dedent(
    f"""
    import datetime as dt

    from airflow.sdk import DAG

    from airflow_provider_opus.operators.opus import OpusExecuteJobOperator

    with DAG("opus_link_bad_input", schedule=None, start_date=dt.datetime(2026, 1, 1)):
        OpusExecuteJobOperator(task_id="run", workflow_id={DEFAULT_WORKFLOW_ID!r}, inputs={{"No such input": "x"}})
    """
)

RUN_DAG = textwrap.dedent(
    """
    import sys
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    assert not bag.import_errors, bag.import_errors
    print("STATE", bag.dags["opus_link_bad_input"].test().state)
    """
)


def test_a_task_that_fails_on_a_bad_input_logs_no_xcom_error_for_its_link(
    emulator: OpusEmulator, tmp_path: Path
) -> None:
    # dag.test() in a child process: the task runner's end-of-task step asks every extra link for its
    # URL, and reading the link's XCom that the failed try never stored logged "[error] XCom not found".
    output = run_dag_file(emulator, tmp_path, DAG_FILE, RUN_DAG)
    assert "STATE failed" in output, output[-3000:]
    assert "No such input" in output  # it failed for the bad input name, before any job started
    assert emulator.requests("initiate_job") == []
    assert "XCom not found" not in output, output[-3000:]
    assert "_link_OpusWorkflowLink" not in output
