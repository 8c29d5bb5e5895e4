"""__main__.py: ``python -m airflow_provider_opus.emulator``, the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, expected_output_file
from tests.emulator.helpers import REQUIRED_INPUTS, TIMEOUT

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_cli_serves_until_sigterm_and_never_prints_the_key():
    key = "cli-secret-key-5d1e"
    env = {**os.environ, "OPUS_EMULATOR_SERVICE_KEY": key}
    command = [sys.executable, "-m", "airflow_provider_opus.emulator", "--port", "0", "--job-duration", "0.1"]
    command += ["--api", "legacy"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(6)]
        url = banner[0].split()[-1]
        assert banner[0].startswith("Opus emulator API:") and url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/_emulator/health", timeout=TIMEOUT).status_code == 200
        workflow = requests.get(f"{url}/workflow/{DEFAULT_WORKFLOW_ID}", headers={"x-service-key": key}, timeout=5)
        assert workflow.status_code == 200
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, stderr
    output = "".join(banner) + stdout + stderr
    assert key not in output
    (export,) = [line.strip() for line in output.splitlines() if line.strip().startswith("export ")]
    # The printed line is meant to be pasted into a shell where the key is in the environment.
    shell = subprocess.run(
        ["bash", "-c", f'{export}; printf %s "$AIRFLOW_CONN_OPUS_DEFAULT"'], env=env, capture_output=True, text=True
    )
    assert json.loads(shell.stdout) == {"conn_type": "opus", "host": url, "password": key, "extra": {"app_url": url}}


def test_cli_rejects_an_invalid_workflows_file(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text("{}")
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_opus.emulator", "--workflows", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert 'expected an object with a "workflows" list' in result.stderr


def test_cli_results_shape_and_file_flags():
    key = "cli-files-key-88a1"
    env = {**os.environ, "OPUS_EMULATOR_SERVICE_KEY": key}
    command = [sys.executable, "-m", "airflow_provider_opus.emulator", "--port", "0", "--job-duration", "0"]
    command += ["--results-shape", "schema", "--files-require-key", "--api", "legacy"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        api = requests.Session()
        api.headers["x-service-key"] = key
        body = {"workflowId": DEFAULT_WORKFLOW_ID, "title": "t", "description": "d"}
        job_id = api.post(f"{url}/job/initiate", json=body, timeout=TIMEOUT).json()["jobExecutionId"]
        execute = {"jobExecutionId": job_id, "jobPayloadSchemaInstance": REQUIRED_INPUTS}
        assert api.post(f"{url}/job/execute", json=execute, timeout=TIMEOUT).status_code == 201
        results = api.get(f"{url}/job/{job_id}/results", timeout=TIMEOUT).json()
        (file_url,) = results["jobResultsPayloadSchema"]["outputFiles"]["value"]
        assert requests.get(file_url, timeout=TIMEOUT).status_code == 401
        assert api.get(file_url, timeout=TIMEOUT).content == expected_output_file(job_id)
    finally:
        process.kill()
        process.communicate(timeout=20)


def test_cli_rejects_a_redirect_that_is_not_a_url():
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_opus.emulator", "--port", "0", "--files-redirect-to", "elsewhere"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "redirect_to must be an http(s) URL" in result.stderr
