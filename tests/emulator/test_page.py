"""page.py: the workflow page that the provider's "Opus workflow" link opens when app_url is the emulator."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, GRAPH_WORKFLOW_ID, VERSIONED_WORKFLOW_ID, OpusEmulator
from tests.emulator.helpers import TIMEOUT

pytestmark = pytest.mark.integration


def _page(emulator: OpusEmulator, workflow_id: str, query: str = "") -> requests.Response:
    # Deliberately without a service key: a browser sends none.
    return requests.get(f"{emulator.app_url}/app/workflow/{workflow_id}{query}", timeout=TIMEOUT)


def test_the_page_shows_the_workflow_and_its_inputs_without_a_key(current):
    response = _page(current, DEFAULT_WORKFLOW_ID)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<h1>Invoice Review</h1>" in page and DEFAULT_WORKFLOW_ID in page
    assert "<td>Customer Name</td><td><code>workflow_input_we4tej0ly</code></td><td>str</td><td>required</td>" in page
    assert "<td>Priority</td><td><code>workflow_input_m2z6rkzgj</code></td><td>bool</td><td>optional</td>" in page
    assert "href=" not in page and "src=" not in page  # links nowhere
    (logged,) = current.requests("app_page")
    assert (logged["status"], logged["had_service_key"]) == (200, False)


def test_the_page_of_a_pinned_version_and_of_a_graph_workflow(current):
    v1 = _page(current, VERSIONED_WORKFLOW_ID, "?version=1").text
    assert "version 1 " in v1 and "Notes" in v1 and "Jurisdiction" not in v1
    latest = _page(current, VERSIONED_WORKFLOW_ID).text
    assert "version 2 " in latest and "Jurisdiction" in latest
    by_id = _page(current, VERSIONED_WORKFLOW_ID, "?workflowVersionId=0a6c1b52-6f0e-4d3b-8c7a-1e2f3a4b5c63").text
    assert "Contract Value" in by_id
    graph = _page(current, GRAPH_WORKFLOW_ID).text
    assert "v2 graph form" in graph and "<td>Parameters</td>" in graph
    # The entry without a display name is shown by its variable name, and as required.
    assert "<td>workflow_input_sr2v7b5kj</td><td><code>workflow_input_sr2v7b5kj</code></td><td>array</td>" in graph


@pytest.mark.parametrize(
    ("workflow_id", "query", "status"),
    [
        ("NoSuchWorkflow", "", 404),
        (VERSIONED_WORKFLOW_ID, "?version=9", 404),
        (VERSIONED_WORKFLOW_ID, "?version=x", 400),
    ],
)
def test_an_unknown_workflow_or_version_is_a_page_too(current, workflow_id, query, status):
    response = _page(current, workflow_id, query)
    assert response.status_code == status and response.text.startswith("<!DOCTYPE html>")


def test_names_are_escaped(tmp_path):
    path = tmp_path / "workflows.json"
    workflow = {"workflowId": "W", "name": "<script>x</script>", "jobPayloadSchema": {"a": {"type": "str"}}}
    path.write_text(json.dumps({"workflows": [workflow]}))
    with OpusEmulator(workflows=path) as emulator:
        page = _page(emulator, "W").text
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_legacy_serves_the_page_too(emulator):
    assert _page(emulator, DEFAULT_WORKFLOW_ID).status_code == 200


def test_the_providers_link_opens_the_page(current):
    links = pytest.importorskip("airflow_provider_opus.links.opus")
    extra = json.loads(current.connection_json())["extra"]
    url = links.workflow_url(extra["app_url"], VERSIONED_WORKFLOW_ID) + "?version=1"
    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200 and "Contract Check" in response.text and "version 1 " in response.text
