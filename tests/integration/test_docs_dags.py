"""
The DAGs of the first pages of the docs run as written, with dag.test() against the emulator.

docs/getting-started.md's ``opus_daily_report`` (its only Python block) and docs/index.md's
``opus_invoice_review`` (its only Python block, with a PDF next to it as Getting started's last
step makes one) are saved into a DAGs folder as a reader would save them. Only their wait is made
shorter; the README's DAG is run by test_example_dags.py.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.test_example_dags import dag_bag_class, task_states

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from airflow.sdk import DAG

    from airflow_provider_opus.emulator import OpusEmulator

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def emulator(either_emulator: OpusEmulator) -> OpusEmulator:
    """A reader may run either API generation: today's (the emulator's default) and the older reference's."""
    return either_emulator


@pytest.fixture(scope="module")
def _migrated() -> None:
    """dag.test() needs a migrated metadata database in the tests' AIRFLOW_HOME."""
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=os.environ, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]


def dag_of_page(page: str, dag_id: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> DAG:
    """The page's one Python block, saved into ``folder`` as the DAGs folder, parsed."""
    from airflow import settings

    (code,) = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.DOTALL)
    (folder / f"{dag_id}.py").write_text(code)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(folder))
    bag = dag_bag_class()(dag_folder=str(folder))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def returned(run: DagRun, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        row = session.scalars(query).first()
        assert row is not None, f"no XCom {key!r} from {task_id}"
        return XComModel.deserialize_value(row)


@pytest.mark.usefixtures("_migrated")
def test_the_getting_started_dag_runs(emulator: OpusEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dag = dag_of_page("getting-started.md", "opus_daily_report", tmp_path, monkeypatch)
    dag.task_dict["run"].poll_interval = 0.1  # type: ignore[union-attr]
    run = dag.test(logical_date=dt.datetime(2026, 6, 2, tzinfo=dt.timezone.utc))  # after the start_date
    assert run.state == "success", task_states(run)
    (job,) = emulator.jobs()
    assert job["workflowId"] == "DailyReport00001"
    assert returned(run, "results")["outputs"]["Total Sales"] == 18250.5  # what the page shows it printing


@pytest.mark.usefixtures("_migrated")
def test_the_front_page_dag_runs_with_a_one_line_pdf(
    emulator: OpusEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "invoice.pdf").write_bytes(b"%PDF-1.4 test invoice\n")  # Getting started's printf
    dag = dag_of_page("index.md", "opus_invoice_review", tmp_path, monkeypatch)
    dag.task_dict["wait"].poke_interval = 0.1  # type: ignore[union-attr]
    run = dag.test(logical_date=dt.datetime(2026, 6, 2, tzinfo=dt.timezone.utc))  # after the start_date
    assert run.state == "success", task_states(run)
    (job,) = emulator.jobs()
    assert job["workflowId"] == "B9uGJfZ3CFwOdMKH"
    # The report task was handed the outputs by display name: each is an XCom of its own.
    assert returned(run, "results", key="Verdict") == "PASS"
    assert returned(run, "results", key="Score") == 92
