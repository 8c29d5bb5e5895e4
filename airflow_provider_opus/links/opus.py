"""Extra links from Opus tasks to the Opus web app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import XCom
from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey


def workflow_url(app_url: str, workflow_id: str) -> str:
    """
    Return the Opus app page of a workflow.

    :param app_url: base URL of the Opus web app, e.g. ``https://app.opus.com``.
    :param workflow_id: the workflow id.
    """
    return f"{app_url.rstrip('/')}/app/workflow/{workflow_id}"


#: The links this process stored, by task instance id and try. Airflow's task runner asks
#: ``get_link`` for every extra link when a task ends, also when it failed before storing one,
#: and its read of an XCom that was never stored logs an ERROR line ("XCom not found").
_stored: dict[tuple[str, int], str] = {}


def _ti_id(ti: Any) -> tuple[str, int] | None:
    """Return the id and try of a running task instance; None for a plain ``TaskInstanceKey``."""
    ti_id = getattr(ti, "id", None)
    return None if ti_id is None else (str(ti_id), int(getattr(ti, "try_number", 0) or 0))


def _resumed_after_deferral(ti: Any) -> bool | None:
    """Tell whether this process resumes a deferred try (its link was stored before it deferred); None if unknown."""
    from_server = getattr(ti, "_ti_context_from_server", None)
    if from_server is None:
        return None
    return bool(getattr(from_server, "next_method", None))


class OpusWorkflowLink(BaseOperatorLink):
    """
    "Opus workflow" button on the task: the workflow's page in the Opus app.

    The operator stores the URL in XCom when it runs (Airflow 3 reads extra links from
    XCom), so the link works without the API server importing the operator.
    """

    name = "Opus workflow"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """
        Return the stored URL for this task instance, or an empty string before the task ran.

        In the task's own process (Airflow's task runner asks when the task ends) the answer
        comes from memory: a try that failed before it stored a link (a bad input, say) has
        none, and no XCom is read for it. A try resumed after a deferral reads the XCom its
        first half stored.

        :param operator: the task's operator.
        :param ti_key: the task instance.
        """
        key = _ti_id(ti_key)
        if key is not None:
            if key in _stored:
                return _stored[key]
            if _resumed_after_deferral(ti_key) is False:  # this try's execute never stored one
                return ""
        value: Any = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""

    @classmethod
    def persist(cls, context: Context, url: str) -> None:
        """
        Store the link for the running task instance.

        :param url: the workflow's URL.
        """
        ti = context["ti"]
        ti.xcom_push(key=cls().xcom_key, value=url)
        key = _ti_id(ti)
        if key is not None:
            _stored[key] = url
