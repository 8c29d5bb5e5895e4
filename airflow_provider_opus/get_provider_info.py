"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point.

Kept free of imports from the rest of the package (but its version): Airflow reads it in every
process (the UI builds the connection form from it without importing the hook).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_opus import __version__

INTEGRATION = "Opus"


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata in the shape Airflow's provider schema validates."""
    return {
        "package-name": "airflow-provider-opus",
        "name": "Opus",
        "description": "Run Opus business workflows as jobs from Airflow: https://opus.com",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://opus.com",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_opus.hooks.opus"]}],
        "operators": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_opus.operators.opus"]}],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_opus.sensors.opus"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_opus.triggers.opus"]}],
        "extra-links": ["airflow_provider_opus.links.opus.OpusWorkflowLink"],
        "connection-types": [
            {
                "connection-type": "opus",
                "hook-class-name": "airflow_provider_opus.hooks.opus.OpusHook",
                "hook-name": "Opus",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema", "port", "extra"],
                    "relabeling": {"host": "API base URL", "password": "Service key"},
                    "placeholders": {
                        "host": "https://operator.opus.com (leave empty for the default)",
                        "password": "the x-service-key from Opus: My Organization > API Keys",
                    },
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Seconds to wait for each Opus API response (default 30).",
                        "schema": {"type": ["number", "null"], "minimum": 1},
                    },
                    "app_url": {
                        "label": "Opus app URL",
                        "description": "Base URL of the Opus web app used for links (default https://app.opus.com).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
