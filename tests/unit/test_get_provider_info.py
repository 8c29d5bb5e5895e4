"""The provider metadata passes Airflow's own validation and registers with the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points

from airflow.providers_manager import _create_provider_info_schema_validator
from packaging.version import Version

from airflow_provider_opus.compat import AIRFLOW_VERSION
from airflow_provider_opus.get_provider_info import get_provider_info


def _airflow(*args: str) -> str:
    # Unit-test mode makes Airflow print a banner on stdout, which would spoil the JSON.
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__CORE__UNIT_TEST_MODE"}
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_entry_point_points_at_get_provider_info():
    (entry,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_opus")
    ]
    assert entry.load() is get_provider_info


def test_metadata_validates_against_airflow_schema():
    _create_provider_info_schema_validator().validate(get_provider_info())


def test_every_declared_module_and_class_imports():
    import importlib

    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for dotted in [*info["extra-links"], info["connection-types"][0]["hook-class-name"]]:
        module, _, name = dotted.rpartition(".")
        assert getattr(importlib.import_module(module), name)


def test_airflow_cli_shows_provider_hook_and_form():
    provider = json.loads(_airflow("providers", "get", "airflow-provider-opus", "-o", "json"))
    assert provider[0]["Provider"] == "airflow-provider-opus"
    hooks = json.loads(_airflow("providers", "hooks", "-o", "json"))
    opus = [h for h in hooks if h["connection_type"] == "opus"]
    assert opus and opus[0]["class"] == "airflow_provider_opus.hooks.opus.OpusHook"
    behaviours = json.loads(_airflow("providers", "behaviours", "-o", "json"))
    # Airflow 3.2+ reads the form from the provider info. 3.1 asks OpusHook, and its CLI only when WTForms
    # is installed (its UI fakes WTForms: tests/e2e/test_deployment.py checks the form there).
    if Version(AIRFLOW_VERSION) >= Version("3.2"):
        assert {"field_behaviours": "opus"} in behaviours
    assert "Service key" in json.dumps(get_provider_info()["connection-types"][0]["ui-field-behaviour"])
    links = _airflow("providers", "links", "-o", "json")
    assert "airflow_provider_opus.links.opus.OpusWorkflowLink" in links
    triggers = _airflow("providers", "triggers", "-o", "json")
    assert "airflow_provider_opus.triggers.opus" in triggers


def test_the_version_is_written_once():
    from importlib.metadata import version

    from airflow_provider_opus import __version__

    assert get_provider_info()["versions"] == [__version__]
    assert version("airflow-provider-opus") == __version__
