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
    """XComs by key, read as the API server's ``XCom.get_value`` would (there is no API server here)."""
    stored: dict = {}

    def get_value(*, ti_key, key):
        assert ti_key == "the-task-instance"
        return stored.get(key)

    monkeypatch.setattr(links, "XCom", SimpleNamespace(get_value=get_value))
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


class RunningTaskInstance:
    """What Airflow's task runner hands ``get_link`` when the task ends: an id, a try, what the server said."""

    def __init__(self, ti_id: str, *, try_number: int = 1, resumed: bool = False) -> None:
        self.id, self.try_number = ti_id, try_number
        self._ti_context_from_server = SimpleNamespace(next_method="execute_complete" if resumed else None)
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


@pytest.fixture
def xcom_reads(monkeypatch) -> list:
    """Every XCom read the link makes (a read of a missing XCom logs an ERROR line in a real task)."""
    reads: list = []

    def get_value(*, ti_key, key):
        reads.append(key)
        return "https://app.opus.com/app/workflow/from-xcom"

    monkeypatch.setattr(links, "XCom", SimpleNamespace(get_value=get_value))
    return reads


def test_a_try_that_failed_before_storing_the_link_reads_no_xcom(xcom_reads):
    # A bad input name fails execute before the job starts: the task runner still asks for the link.
    operator = OpusExecuteJobOperator(task_id="t", workflow_id="wf-1")
    assert OpusWorkflowLink().get_link(operator, ti_key=RunningTaskInstance("ti-failed-early")) == ""
    assert xcom_reads == []


def test_the_try_that_stored_the_link_answers_from_memory(xcom_reads):
    ti = RunningTaskInstance("ti-stored", try_number=2)
    OpusWorkflowLink.persist({**make_context(), "ti": ti}, "https://app.opus.com/app/workflow/wf-1")
    operator = OpusExecuteJobOperator(task_id="t", workflow_id="wf-1")
    assert OpusWorkflowLink().get_link(operator, ti_key=ti) == "https://app.opus.com/app/workflow/wf-1"
    assert ti.xcom == {"_link_OpusWorkflowLink": "https://app.opus.com/app/workflow/wf-1"}
    assert xcom_reads == []
    # Another try of the same task instance stored nothing yet.
    assert OpusWorkflowLink().get_link(operator, ti_key=RunningTaskInstance("ti-stored", try_number=3)) == ""


def test_a_try_resumed_after_deferral_reads_the_link_its_first_half_stored(xcom_reads):
    operator = OpusExecuteJobOperator(task_id="t", workflow_id="wf-1")
    ti = RunningTaskInstance("ti-resumed", resumed=True)
    assert OpusWorkflowLink().get_link(operator, ti_key=ti) == "https://app.opus.com/app/workflow/from-xcom"
    assert xcom_reads == ["_link_OpusWorkflowLink"]
