"""What differs between the Airflow minors the provider supports (3.1 to 3.3) that common-compat does not cover.

Airflow's exceptions, ``conf`` and ``XCom`` come from ``airflow.providers.common.compat.sdk``
(``apache-airflow-providers-common-compat``, as first-party providers take them), which finds each
where this Airflow keeps it; so does ``ResumableJobMixin``, refined here. Nothing else in the package
asks which Airflow runs (docs/airflow-versions.md). What is left here, each with its reason:

* ``ResumableJobMixin``: Airflow 3.3's (with the task state store it keeps the job id in). Below
  3.3, common-compat's stand-in starts a new job on every try, as it must (those minors clear a
  task's XComs when a new try starts and have no other per-task store), but logs nothing: ours
  adds the line that tells a user why a retry billed a second job.
* The task state store (``task_state_store`` in the task's context): from 3.3; None before.
* The connection form: 3.2+ builds it from the ``conn-fields`` and ``ui-field-behaviour`` of the
  provider info; 3.1 calls the hook's ``get_connection_form_widgets`` and
  ``get_ui_field_behaviour`` instead, which :func:`connection_form_widgets` and
  :func:`connection_ui_field_behaviour` build from that same provider info. common-compat has no
  such helper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import airflow.sdk
from airflow import __version__ as AIRFLOW_VERSION
from airflow.providers.common.compat.sdk import ResumableJobMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "AIRFLOW_VERSION",
    "HAS_TASK_STATE_STORE",
    "ResumableJobMixin",
    "connection_form_widgets",
    "connection_ui_field_behaviour",
    "task_state_store",
]

#: Whether this Airflow keeps a task state store (3.3+), so a retry can reattach to the previous try's job.
HAS_TASK_STATE_STORE: bool = hasattr(airflow.sdk, "ResumableJobMixin")

if not HAS_TASK_STATE_STORE and not TYPE_CHECKING:
    _StandIn = ResumableJobMixin

    class ResumableJobMixin(_StandIn):
        """
        common-compat's stand-in for Airflow 3.1 and 3.2 (every try starts a new job), and one log line saying so.

        The stand-in alone says nothing: a retry that bills a second job would leave no reason in the
        task log. ``durable`` is accepted and has no effect on these minors (common-compat sets it False).
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


# TRANSITIONAL (#19): re-exported until every importer takes them from common-compat.
