"""
The built distribution, installed from the wheel into a fresh virtual environment (not the source tree).

Builds the sdist and the wheel as ``make dist`` does (``python -m build``), installs the wheel with
pip into a new venv (pinned to the versions of the development venv, from pip's cache), and checks
from outside the source tree: the provider registers with Airflow, the emulator starts with its
bundled workflows, the package data is there, and an example DAG runs with dag.test().
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_opus import __version__
from tests.conftest import SERVICE_KEY
from tests.support.emulator_process import EmulatorProcess

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
VERSION = __version__  # the one place it is written; the built files must carry it

_RUN_EXAMPLE = """
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
assert not bag.import_errors, bag.import_errors
run = bag.dags["opus_document_review"].test()
with create_session() as session:
    row = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids="decide")).first()
    decision = XComModel.deserialize_value(row) if row is not None else None
import airflow_provider_opus
with open(sys.argv[1], "w") as out:
    json.dump({"state": str(run.state), "decision": decision, "package": airflow_provider_opus.__file__}, out)
"""


class Venv:
    """A fresh virtual environment with the wheel installed, and an environment free of the test's settings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "venv"
        self.python = str(self.path / "bin" / "python")
        self.home = root / "airflow-home"
        self.dags = root / "dags"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTHONPATH"))}
        self.env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "OPUS_POLL_INTERVAL": "0.2",
            }
        )

    def run(self, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        # cwd outside the source tree, so nothing is imported from it by accident.
        result = subprocess.run(
            argv, env=self.env, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert result.returncode == 0, f"{argv}: {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (path,) = dist.glob("airflow_provider_opus-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    venv = Venv(tmp_path_factory.mktemp("installed"))
    subprocess.run([sys.executable, "-m", "venv", str(venv.path)], check=True)
    # The development venv's versions as constraints: the same, already cached releases, and no backtracking.
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
    )
    pins = [
        line for line in freeze.stdout.splitlines() if "==" in line and not line.startswith("airflow-provider-opus")
    ]
    constraints = venv.root / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    venv.run(venv.python, "-m", "pip", "install", "--quiet", "--constraint", str(constraints), str(wheel))
    yield venv


def test_dist_holds_a_wheel_and_an_sdist(dist: Path) -> None:
    assert sorted(path.name for path in dist.iterdir()) == [
        f"airflow_provider_opus-{VERSION}-py3-none-any.whl",
        f"airflow_provider_opus-{VERSION}.tar.gz",
    ]


def test_wheel_has_the_package_data_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "airflow_provider_opus/py.typed" in names
    assert "airflow_provider_opus/emulator/workflows.json" in names
    assert {name.split("/")[0] for name in names} == {
        "airflow_provider_opus",
        f"airflow_provider_opus-{VERSION}.dist-info",
    }
    entry_points = zipfile.ZipFile(wheel).read(f"airflow_provider_opus-{VERSION}.dist-info/entry_points.txt").decode()
    assert "[apache_airflow_provider]" in entry_points
    assert "airflow_provider_opus.get_provider_info:get_provider_info" in entry_points


def test_installed_from_the_wheel(venv: Venv) -> None:
    code = (
        "import importlib.metadata as m, importlib.resources as r, airflow_provider_opus as p;"
        "print(p.__file__); print(m.version('airflow-provider-opus'));"
        "print(r.files(p).joinpath('py.typed').is_file(), r.files(p).joinpath('emulator/workflows.json').is_file())"
    )
    file, version, data = venv.run(venv.python, "-c", code).stdout.split("\n")[:3]
    assert file.startswith(str(venv.path)), file
    assert version == VERSION
    assert data == "True True"


def test_the_provider_registers(venv: Venv) -> None:
    airflow = str(venv.path / "bin" / "airflow")
    info = json.loads(venv.run(airflow, "providers", "get", "airflow-provider-opus", "-o", "json").stdout)
    assert info[0]["Provider"] == "airflow-provider-opus" and info[0]["Version"] == VERSION
    listed = json.loads(venv.run(airflow, "providers", "list", "-o", "json").stdout)
    assert "airflow-provider-opus" in {row["package_name"] for row in listed}
    hooks = venv.run(airflow, "providers", "hooks", "-o", "json").stdout
    assert "airflow_provider_opus.hooks.opus.OpusHook" in hooks


@pytest.fixture(scope="module")
def installed_emulator(venv: Venv) -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess(venv.root, SERVICE_KEY, job_duration=0.3, python=venv.python, api="legacy")
    with emulator:
        yield emulator
    assert emulator.process.returncode() == 0  # SIGTERM stops it cleanly


def test_the_emulator_starts_with_its_bundled_workflows(installed_emulator: EmulatorProcess) -> None:
    banner = installed_emulator.process.log_path.read_text()
    assert "B9uGJfZ3CFwOdMKH (Invoice Review)" in banner and "DailyReport00001 (Daily Sales Report)" in banner
    assert SERVICE_KEY not in banner
    for workflow_id in ("B9uGJfZ3CFwOdMKH", "DailyReport00001"):
        response = requests.get(
            f"{installed_emulator.url}/workflow/{workflow_id}", headers={"x-service-key": SERVICE_KEY}, timeout=10
        )
        assert response.status_code == 200 and response.json()["workflowId"] == workflow_id


def test_an_example_dag_runs(venv: Venv, installed_emulator: EmulatorProcess) -> None:
    shutil.copytree(REPO / "example_dags" / "data", venv.dags / "data")
    shutil.copy(REPO / "example_dags" / "opus_document_review.py", venv.dags)
    venv.env["AIRFLOW_CONN_OPUS_DEFAULT"] = installed_emulator.connection_json()
    venv.run(venv.python, "-m", "airflow", "db", "migrate")
    result_file = venv.root / "result.json"
    output = venv.run(venv.python, "-c", _RUN_EXAMPLE, str(result_file))
    result = json.loads(result_file.read_text())
    assert result["state"] == "success", output.stdout[-4000:]
    assert result["package"].startswith(str(venv.path))
    assert result["decision"]["verdict"] == "PASS" and result["decision"]["approved"] is True
    assert SERVICE_KEY not in output.stdout + output.stderr
