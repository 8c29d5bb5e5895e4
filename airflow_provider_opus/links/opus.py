"""Extra links from Opus tasks to the Opus web app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider_opus.compat import BaseXCom

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

        :param operator: the task's operator.
        :param ti_key: the task instance.
        """
        value: Any = BaseXCom.get_value(ti_key=ti_key, key=self.xcom_key)  # type: ignore[arg-type]
        return str(value) if value else ""

    @classmethod
    def persist(cls, context: Context, url: str) -> None:
        """
        Store the link for the running task instance.

        :param url: the workflow's URL.
        """
        context["ti"].xcom_push(key=cls().xcom_key, value=url)
