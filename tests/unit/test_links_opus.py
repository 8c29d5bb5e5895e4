"""links/opus.py: the "Opus workflow" button: the URL of a workflow's page, stored when the task runs and read back."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_opus.links import opus as links
from airflow_provider_opus.links.opus import OpusWorkflowLink, workflow_url
from airflow_provider_opus.operators.execute import OpusExecuteJobOperator
from tests.support.task_context import make_context


@pytest.mark.parametrize("app_url", ["https://app.opus.com", "https://app.opus.com/", "https://app.opus.com//"])
def test_workflow_url_is_the_workflows_page_of_the_app(app_url):
    assert workflow_url(app_url, "wf-1") == "https://app.opus.com/app/workflow/wf-1"


@pytest.fixture
def stored_xcoms(monkeypatch) -> dict:
    """XComs by key, read as the API server's ``BaseXCom.get_value`` would (there is no API server here)."""
    stored: dict = {}

    def get_value(*, ti_key, key):
        assert ti_key == "the-task-instance"
        return stored.get(key)

    monkeypatch.setattr(links, "BaseXCom", SimpleNamespace(get_value=get_value))
    return stored


def test_the_link_reads_back_what_the_running_task_stored(stored_xcoms):
    context = make_context()
    OpusWorkflowLink.persist(context, "https://app.opus.com/app/workflow/wf-1")
    (key,) = context["ti"].xcom
    assert key == OpusWorkflowLink().xcom_key == "_link_OpusWorkflowLink"
    stored_xcoms.update(context["ti"].xcom)
    link = OpusWorkflowLink().get_link(
        OpusExecuteJobOperator(task_id="t", workflow_id="wf-1"), ti_key="the-task-instance"
    )
    assert link == "https://app.opus.com/app/workflow/wf-1"


def test_before_the_task_ran_the_link_is_empty(stored_xcoms):
    operator = OpusExecuteJobOperator(task_id="t", workflow_id="wf-1")
    assert OpusWorkflowLink().get_link(operator, ti_key="the-task-instance") == ""


def test_the_execute_operator_shows_the_link():
    assert [link.name for link in OpusExecuteJobOperator.operator_extra_links] == ["Opus workflow"]
    assert isinstance(OpusExecuteJobOperator.operator_extra_links[0], OpusWorkflowLink)
