"""
What differs between the Airflow minors the provider supports (3.1 to 3.3) that common-compat does not cover.

Airflow's exceptions, ``conf``, ``XCom`` and ``ResumableJobMixin`` come from
``airflow.providers.common.compat.sdk``, as first-party providers take them; what is left here says
beside each part why it is needed (docs/airflow-versions.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import airflow.sdk
from airflow import __version__ as AIRFLOW_VERSION
from airflow.providers.common.compat.sdk import ResumableJobMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Whether this Airflow keeps a task state store (3.3+), so a retry can reattach to the previous try's job.
HAS_TASK_STATE_STORE: bool = hasattr(airflow.sdk, "ResumableJobMixin")

if not HAS_TASK_STATE_STORE and not TYPE_CHECKING:
    _StandIn = ResumableJobMixin

    class ResumableJobMixin(_StandIn):
        """
        common-compat's stand-in below Airflow 3.3, plus the log line it lacks.

        Those minors clear a task's XComs when a new try starts and have no other per-task store, so
        every try starts a new job; the stand-in says nothing, and a second billed job would have no
        reason in the task log. ``durable`` has no effect here (common-compat sets it False).
        """

        def execute_resumable(self, context: Context) -> Any:  # noqa: D102 (the mixin's own method, logged)
            self.log.info(
                "Airflow %s has no task state store: a retry of this task starts a new Opus job "
                "(reattaching to a running job needs Airflow 3.3+)",
                AIRFLOW_VERSION,
            )
            return super().execute_resumable(context)


def task_state_store(context: Context) -> Any | None:
    """
    Return the store that keeps a task's state across its tries, or None before Airflow 3.3, which has none.

    :param context: the running task's context, where Airflow 3.3+ puts the store.
    """
    return context.get("task_state_store")


def connection_form_widgets(connection_type: dict[str, Any]) -> dict[str, Any]:
    """
    Return the connection form's extra fields as WTForms fields, for Airflow 3.1's UI.

    3.1 asks the hook for its form; 3.2+ reads the provider info's ``conn-fields``, which this
    turns into the same fields (labels, descriptions, defaults; numbers as whole numbers, passwords
    hidden). common-compat has no such helper. 3.1's API server stands in for WTForms while it calls this.

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
        # The initial value: "Verify TLS certificates" shows on, as on 3.2+.
        default = {"default": schema["default"]} if "default" in schema else {}
        widgets[name] = field_class(
            spec.get("label", name), validators=[Optional()], description=spec.get("description", ""), **default
        )
    return widgets


def connection_ui_field_behaviour(connection_type: dict[str, Any]) -> dict[str, Any]:
    """
    Return the ``ui-field-behaviour`` of the provider info in the keys Airflow 3.1's hook method returns.

    :param connection_type: one entry of ``get_provider_info()["connection-types"]``.
    """
    behaviour = connection_type.get("ui-field-behaviour", {})
    return {
        "hidden_fields": list(behaviour.get("hidden-fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }
