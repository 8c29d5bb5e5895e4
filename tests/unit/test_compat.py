"""What differs between the supported Airflow minors: names from common-compat, the reattach stand-in, the form."""

from __future__ import annotations

import sys
import types
import warnings

import pytest
from airflow.providers_manager import _create_customized_form_field_behaviours_schema_validator
from packaging.version import Version

from airflow_provider_opus import compat
from airflow_provider_opus.compat import AIRFLOW_VERSION
from airflow_provider_opus.exceptions import OpusError, OpusInvalidArgumentError
from airflow_provider_opus.get_provider_info import get_provider_info
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.operators.opus import OpusExecuteJobOperator

CONNECTION_TYPE = get_provider_info()["connection-types"][0]


def test_the_task_state_store_is_there_from_airflow_3_3_only():
    assert (Version(AIRFLOW_VERSION) >= Version("3.3")) == compat.HAS_TASK_STATE_STORE
    from airflow import __version__

    assert __version__ == AIRFLOW_VERSION


def test_the_errors_are_the_classes_this_airflows_task_runner_catches():
    # Taken from common-compat: 3.2+ has them in airflow.sdk.exceptions; 3.1's task runner catches
    # airflow.exceptions' own (where 3.1's SDK AirflowException is the same class).
    from airflow.providers.common.compat import sdk as common_compat

    module = "airflow.sdk.exceptions" if Version(AIRFLOW_VERSION) >= Version("3.2") else "airflow.exceptions"
    for name in ("AirflowException", "AirflowFailException", "AirflowTaskTimeout", "AirflowSensorTimeout"):
        assert getattr(common_compat, name) is getattr(sys.modules[module], name), name
    assert issubclass(OpusError, common_compat.AirflowException)
    assert issubclass(OpusInvalidArgumentError, common_compat.AirflowFailException)


@pytest.mark.parametrize("durable", [True, False])
def test_durable_is_taken_on_every_minor(durable):
    # From the arguments and from default_args alike, as Airflow 3.3's own mixin takes it; below 3.3
    # common-compat's stand-in takes it (warning that it has no effect) and keeps False.
    expected = durable if compat.HAS_TASK_STATE_STORE else False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        op = OpusExecuteJobOperator(task_id="run", workflow_id="w", durable=durable)
    assert op.durable is expected
    op = OpusExecuteJobOperator(task_id="run", workflow_id="w", default_args={"durable": durable})
    assert op.durable is expected


def test_the_execute_operator_uses_the_mixin_of_this_airflow():
    from airflow.providers.common.compat import sdk as common_compat

    assert issubclass(OpusExecuteJobOperator, common_compat.ResumableJobMixin)
    assert issubclass(OpusExecuteJobOperator, compat.ResumableJobMixin)
    # 3.3's own mixin as it is; below, common-compat's stand-in with the log line added here.
    assert (compat.ResumableJobMixin is common_compat.ResumableJobMixin) == compat.HAS_TASK_STATE_STORE
    assert OpusExecuteJobOperator.external_id_key == "opus_job_execution_id"


# -- the connection form for Airflow 3.1 -------------------------------------------------------------


@pytest.fixture
def wtforms(monkeypatch):
    """A stand-in for WTForms, as Airflow 3.1's API server puts in place while it asks the hook."""

    class Field:
        def __init__(self, label, validators=None, description="", default=None):
            self.label, self.validators, self.description, self.default = label, validators, description, default

    module = types.ModuleType("wtforms")
    for name in ("StringField", "IntegerField", "PasswordField", "BooleanField"):
        setattr(module, name, type(name, (Field,), {}))
    validators = types.ModuleType("wtforms.validators")
    validators.Optional = type("Optional", (), {})
    module.validators = validators
    monkeypatch.setitem(sys.modules, "wtforms", module)
    monkeypatch.setitem(sys.modules, "wtforms.validators", validators)
    return module


def test_the_form_methods_are_the_hooks_own():
    # Airflow 3.1 calls them only when they are in the hook class's own __dict__, not inherited.
    assert {"get_connection_form_widgets", "get_ui_field_behaviour"} <= set(vars(OpusHook))


def test_the_form_fields_are_the_conn_fields_of_the_provider_info(wtforms):
    widgets = OpusHook.get_connection_form_widgets()
    assert set(widgets) == set(CONNECTION_TYPE["conn-fields"]) >= {"timeout", "app_url"}
    for name, spec in CONNECTION_TYPE["conn-fields"].items():
        assert widgets[name].label == spec["label"]
        assert widgets[name].description == spec["description"]
        assert [type(v).__name__ for v in widgets[name].validators] == ["Optional"]
        assert widgets[name].default == spec["schema"].get("default")
    assert type(widgets["timeout"]) is wtforms.IntegerField  # "number": the form asks for whole seconds
    assert type(widgets["app_url"]) is wtforms.StringField
    assert widgets["verify_tls"].default is True


def test_airflow_3_1_shows_verify_tls_on_until_changed(monkeypatch):
    # Airflow's own stand-ins for WTForms (the ones its API server puts in place on 3.1, kept on 3.3)
    # turn each field into the Param the form is drawn from: its value is what the form shows at first.
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    module = types.ModuleType("wtforms")
    for name in ("StringField", "IntegerField", "PasswordField", "BooleanField"):
        setattr(module, name, getattr(HookMetaService, f"Mock{name}"))
    validators = types.ModuleType("wtforms.validators")
    validators.Optional = HookMetaService.MockOptional
    module.validators = validators
    monkeypatch.setitem(sys.modules, "wtforms", module)
    monkeypatch.setitem(sys.modules, "wtforms.validators", validators)

    shown = {name: widget.param.dump() for name, widget in OpusHook.get_connection_form_widgets().items()}
    assert shown["verify_tls"]["value"] is True  # was None: the box showed off while the hook verifies
    assert shown["verify_tls"]["schema"]["type"] == ["boolean", "null"]
    for name, spec in CONNECTION_TYPE["conn-fields"].items():
        assert shown[name]["value"] == spec["schema"].get("default"), name


def test_each_schema_type_has_its_field(wtforms):
    fields = {
        "secret": {"schema": {"type": ["string", "null"], "format": "password"}},
        "flag": {"schema": {"type": "boolean"}},
        "count": {"schema": {"type": "integer"}},
        "name": {"label": "Name", "schema": {"type": "string"}},
        "bare": {},
    }
    widgets = compat.connection_form_widgets({"conn-fields": fields})
    classes = {name: type(widget).__name__ for name, widget in widgets.items()}
    assert classes == {
        "secret": "PasswordField",
        "flag": "BooleanField",
        "count": "IntegerField",
        "name": "StringField",
        "bare": "StringField",
    }
    assert widgets["bare"].label == "bare" and widgets["name"].label == "Name"


def test_the_field_behaviour_is_the_provider_infos_and_airflow_accepts_it():
    behaviour = OpusHook.get_ui_field_behaviour()
    declared = CONNECTION_TYPE["ui-field-behaviour"]
    assert behaviour == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }
    _create_customized_form_field_behaviours_schema_validator().validate(behaviour)
