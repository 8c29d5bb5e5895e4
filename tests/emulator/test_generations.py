"""generations.py and every way to choose the API generation: constructor, state, run time, admin routes, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from airflow_provider_opus.emulator import (
    API_GENERATIONS,
    DEFAULT_API,
    DEFAULT_WORKFLOW_ID,
    GRAPH_WORKFLOW_ID,
    VERSIONED_WORKFLOW_ID,
    OpusEmulator,
)
from airflow_provider_opus.emulator.errors import BadRequest
from airflow_provider_opus.emulator.generations import check_api, is_http_url, is_loopback_url
from airflow_provider_opus.emulator.state import EmulatorState
from airflow_provider_opus.emulator.workflows import load_workflows
from tests.emulator.helpers import REQUIRED_INPUTS, TIMEOUT, Api, CurrentApi

pytestmark = pytest.mark.integration


def test_current_is_the_default_everywhere():
    assert (API_GENERATIONS, DEFAULT_API) == (("current", "legacy"), "current")
    assert OpusEmulator().api == "current"
    assert EmulatorState(load_workflows(), "k").api == "current"
    assert EmulatorState(load_workflows(), "k", api="legacy").api == "legacy"


@pytest.mark.parametrize("api", ["v2", "Current", None, ""])
def test_an_unknown_generation_is_refused(api):
    with pytest.raises(ValueError, match="api must be one of current, legacy"):
        OpusEmulator(api=api)
    with pytest.raises(BadRequest):
        check_api(api)


def test_the_generation_changes_at_run_time_and_the_admin_routes_report_it(current):
    admin = f"{current.url}/_emulator/config"
    assert requests.get(admin, timeout=TIMEOUT).json()["api"] == "current"
    api = CurrentApi(current)
    job_id = api.initiate()
    # Legacy takes the older body: title and description required, callbackUrl ignored.
    assert requests.post(admin, json={"api": "legacy"}, timeout=TIMEOUT).json()["api"] == "legacy"
    assert current.api == "legacy"
    assert api.post("/job/initiate", {"workflowId": DEFAULT_WORKFLOW_ID}).status_code == 400
    legacy = Api(current).execute(job_id, REQUIRED_INPUTS)
    assert legacy.status_code == 201 and "jobPayloadSchemaInstance" in legacy.json()
    assert api.get(f"/job/{job_id}/audit").json()["auditTrail"][0]["action"] == "Job initiated"
    assert current.configure(api="current")["api"] == "current"
    assert "nb_nodes" in api.get(f"/job/{job_id}/audit").json()
    bad = requests.post(admin, json={"api": "v3"}, timeout=TIMEOUT)
    assert bad.status_code == 400 and "api must be one of current, legacy" in bad.json()["message"]
    with pytest.raises(ValueError, match="api must be one of"):
        current.configure(api="v3")
    current.reset()
    assert current.api == "current"  # reset keeps the configuration


def test_the_current_only_workflows_are_not_served_in_legacy(current):
    api = Api(current)
    for workflow_id in (VERSIONED_WORKFLOW_ID, GRAPH_WORKFLOW_ID):
        assert api.get(f"/workflow/{workflow_id}").status_code == 200
    current.configure(api="legacy")
    for workflow_id in (VERSIONED_WORKFLOW_ID, GRAPH_WORKFLOW_ID):
        assert api.get(f"/workflow/{workflow_id}").status_code == 404
        assert requests.get(f"{current.url}/app/workflow/{workflow_id}", timeout=TIMEOUT).status_code == 404
    assert [workflow.workflow_id for workflow in current.state.served_workflows()] == [
        DEFAULT_WORKFLOW_ID,
        "DailyReport00001",
    ]


def test_the_connection_points_the_link_and_the_callback_at_the_emulator(current):
    connection = json.loads(current.connection_json())
    assert connection == {
        "conn_type": "opus",
        "host": current.url,
        "password": current.service_key,
        "extra": {"app_url": current.url, "callback_url": f"{current.url}/_emulator/callbacks"},
    }
    assert current.callback_url == f"{current.url}/_emulator/callbacks" and current.app_url == current.url
    current.configure(api="legacy")
    # Legacy does without a callback URL; the link still opens the emulator's page.
    assert json.loads(current.connection_json())["extra"] == {"app_url": current.url}


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080/cb", True),
        ("https://127.9.0.1/cb", True),
        ("http://localhost:1/x", True),
        ("http://LOCALHOST./x", True),
        ("http://[::1]:9/cb", True),
        ("https://example.com/cb", False),
        ("http://10.0.0.1/cb", False),
        ("http://localhost.example.com/cb", False),
        ("http://127.0.0.1.nip.io/cb", False),
        ("ftp://127.0.0.1/cb", False),
        ("not a url", False),
    ],
)
def test_only_loopback_urls_count_as_loopback(url, loopback):
    assert is_loopback_url(url) is loopback


@pytest.mark.parametrize("url", ["", "  ", "example.com/cb", "ftp://host/x", "http://", "http://h:99999/", 5, None])
def test_what_is_not_an_http_url(url):
    assert not is_http_url(url)


def _cli(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "airflow_provider_opus.emulator", "--port", "0", *args]
    env = {**os.environ, "OPUS_EMULATOR_SERVICE_KEY": "cli-generation-key"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(("args", "api"), [((), "current"), (("--api", "legacy"), "legacy")])
def test_cli_serves_the_generation_it_is_given(args, api):
    process = _cli(*args)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(6)]
        url = banner[0].split()[-1]
        assert banner[2].startswith(f"API generation: {api} ")
        assert requests.get(f"{url}/_emulator/config", timeout=TIMEOUT).json()["api"] == api
        export = next(line for line in banner if "export AIRFLOW_CONN_OPUS_DEFAULT" in line)
        extra = {"app_url": url} | ({"callback_url": f"{url}/_emulator/callbacks"} if api == "current" else {})
        assert json.dumps(extra).replace('"', '\\"') in export
        listed = next(line for line in banner if line.startswith("Workflows:"))
        assert (GRAPH_WORKFLOW_ID in listed) is (api == "current")
    finally:
        process.kill()
        process.communicate(timeout=20)


def test_cli_refuses_an_unknown_generation():
    process = _cli("--api", "v2")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2 and "invalid choice: 'v2'" in stderr
