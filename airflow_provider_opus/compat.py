"""Every difference between the Airflow 3 minors the provider supports, in one place.

The rest of the package imports the names below from here and never tests the Airflow version.
Each name is taken from where the newest Airflow keeps it; only when that import fails is the
older place used, so a newer Airflow never pays for an older one. What differs (docs/airflow-versions.md):

* ``conf``: ``airflow.sdk`` from 3.2, ``airflow.configuration`` before.
* ``AirflowException``, ``AirflowFailException``, ``AirflowTaskTimeout``, ``AirflowSensorTimeout``
  (and, for tests, ``TaskDeferred`` and ``AirflowRescheduleException``): ``airflow.sdk.exceptions``
  from 3.2, ``airflow.exceptions`` before. They are taken together: 3.1 has ``AirflowException``
  in the SDK but not the others, and its task runner catches the core classes.
* ``BaseXCom``: ``airflow.sdk`` from 3.2, ``airflow.sdk.bases.xcom`` before.
* ``ResumableJobMixin``: from 3.3 (with the task state store it keeps the job id in). Before, a
  stand-in with the same interface that starts a new job on every try and says so in the log:
  those minors clear a task's XComs when a new try starts and have no other per-task store, so
  a retry cannot find the previous try's job.
* The task state store (``task_state_store`` in the task's context): from 3.3; None before.
* The connection form: 3.2+ builds it from the ``conn-fields`` and ``ui-field-behaviour`` of the
  provider info; 3.1 calls the hook's ``get_connection_form_widgets`` and
  ``get_ui_field_behaviour`` instead, which :func:`connection_form_widgets` and
  :func:`connection_ui_field_behaviour` build from that same provider info.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION
from airflow.sdk.bases.operator import BaseOperatorMeta

if TYPE_CHECKING:
    # The type checker sees the newest Airflow's names (the main virtualenv has it).
    from airflow.sdk import BaseXCom, Context, ResumableJobMixin, conf
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowTaskTimeout,
        TaskDeferred,
    )
    from airflow.sdk.types import Logger

__all__ = [
    "AIRFLOW_VERSION",
    "HAS_TASK_STATE_STORE",
    "AirflowException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowTaskTimeout",
    "BaseXCom",
    "ResumableJobMixin",
    "TaskDeferred",
    "conf",
    "connection_form_widgets",
    "connection_ui_field_behaviour",
    "task_state_store",
]


class ResumableJobStandIn:
    """
    Airflow 3.1 and 3.2's stand-in for ``airflow.sdk.ResumableJobMixin``: every try starts a new job.

    Those minors have no task state store, and clear a task's XComs when a new try starts, so
    there is nowhere to find the job an earlier try started. :meth:`execute_resumable` runs
    ``submit_job``, ``poll_until_complete`` and ``get_job_result`` in turn and logs one line
    saying so. ``durable`` is accepted and kept, so a DAG written for Airflow 3.3 runs unchanged.

    :param durable: kept as ``self.durable``; it has no effect on these minors.
    """

    if TYPE_CHECKING:
        log: Logger

    external_id_key: str = "remote_job_id"

    # As the real mixin: default_args can set ``durable``.
    @BaseOperatorMeta._apply_defaults  # type: ignore[type-var]
    def __init__(self, *, durable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.durable = durable

    def execute_resumable(self, context: Context) -> Any:
        """Start a job, wait for it as configured and return its result: no reattach on these minors."""
        self.log.info(
            "Airflow %s has no task state store: a retry of this task starts a new Opus job "
            "(reattaching to a running job needs Airflow 3.3+)",
            AIRFLOW_VERSION,
        )
        external_id = self.submit_job(context)
        self.poll_until_complete(external_id, context)
        return self.get_job_result(external_id, context)

    def submit_job(self, context: Context) -> Any:
        """Start the job and return its id (the operator's)."""
        raise NotImplementedError

    def poll_until_complete(self, external_id: Any, context: Context) -> None:
        """Wait for the job (the operator's)."""
        raise NotImplementedError

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        """Return what the task returns (the operator's)."""
        raise NotImplementedError


if not TYPE_CHECKING:
    try:
        from airflow.sdk import conf
    except ImportError:  # Airflow < 3.2
        from airflow.configuration import conf

    import airflow.sdk.exceptions as _exceptions

    if not hasattr(_exceptions, "AirflowFailException"):  # Airflow < 3.2: all of them from the core
        import airflow.exceptions as _exceptions
    AirflowException = _exceptions.AirflowException
    AirflowFailException = _exceptions.AirflowFailException
    AirflowRescheduleException = _exceptions.AirflowRescheduleException
    AirflowSensorTimeout = _exceptions.AirflowSensorTimeout
    AirflowTaskTimeout = _exceptions.AirflowTaskTimeout
    TaskDeferred = _exceptions.TaskDeferred

    try:
        from airflow.sdk import BaseXCom
    except ImportError:  # Airflow < 3.2
        from airflow.sdk.bases.xcom import BaseXCom

    try:
        from airflow.sdk import ResumableJobMixin
    except ImportError:  # Airflow < 3.3
        ResumableJobMixin = ResumableJobStandIn

#: Whether this Airflow keeps a task state store, so a retry can reattach to the previous try's job.
HAS_TASK_STATE_STORE: bool = ResumableJobMixin is not ResumableJobStandIn


def task_state_store(context: Context) -> Any | None:
    """
    Return the store that keeps a task's state across its tries, or None where Airflow has none (before 3.3).

    :param context: the running task's context, where Airflow 3.3+ puts the store.
    """
    return context.get("task_state_store")


def connection_form_widgets(connection_type: dict[str, Any]) -> dict[str, Any]:
    """
    Return the connection form's extra fields as WTForms fields, for Airflow 3.1's UI.

    Built from the ``conn-fields`` of a ``connection-types`` entry of the provider info, the
    source Airflow 3.2+ reads directly: the same labels, descriptions and defaults (a schema's
    ``default`` is the field's ``default``, so "Verify TLS certificates" shows on as on 3.2+),
    ``integer`` and ``number`` as whole numbers, ``format: password`` hidden. The UI's API
    server puts its own stand-ins in place of WTForms while it calls this, so WTForms need not
    be installed there.

    :param connection_type: one entry of ``get_provider_info()["connection-types"]``.
    """
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for name, spec in connection_type.get("conn-fields", {}).items():
        schema = spec.get("schema", {})
        types = schema.get("type", "string")
        types = {types} if isinstance(types, str) else set(types)
        if schema.get("format") == "password":
            field_class = PasswordField
        elif "boolean" in types:
            field_class = BooleanField
        elif types & {"integer", "number"}:
            field_class = IntegerField
        else:
            field_class = StringField
        # WTForms takes a field's initial value as ``default``; Airflow 3.1's stand-ins show it as the value.
        default = {"default": schema["default"]} if "default" in schema else {}
        widgets[name] = field_class(
            spec.get("label", name), validators=[Optional()], description=spec.get("description", ""), **default
        )
    return widgets


def connection_ui_field_behaviour(connection_type: dict[str, Any]) -> dict[str, Any]:
    """
    Return how the connection form shows its standard fields, for Airflow 3.1's UI.

    The ``ui-field-behaviour`` of a ``connection-types`` entry of the provider info, renamed
    to the keys the hook method returns (``hidden_fields``, ``relabeling``, ``placeholders``).

    :param connection_type: one entry of ``get_provider_info()["connection-types"]``.
    """
    behaviour = connection_type.get("ui-field-behaviour", {})
    return {
        "hidden_fields": list(behaviour.get("hidden-fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }
