"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point.

Kept free of imports from the rest of the package (but its version): Airflow reads it in every
process (the UI builds the connection form from it without importing the hook).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_opus import __version__

INTEGRATION = "Opus"
#: Default of ``[opus] connection_cache_seconds`` (read by :mod:`airflow_provider_opus.connection_cache`).
CONNECTION_CACHE_SECONDS = 60.0


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
        "config": {
            "opus": {
                "description": "Options of the Opus provider.",
                "options": {
                    "connection_cache_seconds": {
                        "description": "Seconds the async hooks of one event loop (a triggerer's) keep the checked "
                        "settings of a connection, so that thousands of deferred Opus tasks read it once, not once "
                        "each. A rotated service key is picked up within that time (at once after Opus refuses the "
                        "old one). 0 reads the connection for every trigger.\n",
                        "version_added": None,
                        "type": "float",
                        "example": "0",
                        "default": str(CONNECTION_CACHE_SECONDS),
                    }
                },
            }
        },
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_opus.hooks.opus"]}],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_opus.operators.opus",
                    "airflow_provider_opus.operators.upload",
                    "airflow_provider_opus.operators.execute",
                    "airflow_provider_opus.operators.results",
                ],
            }
        ],
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
                        "description": "Seconds a whole Opus API call may take, answer included (default 30).",
                        "schema": {"type": ["number", "null"], "minimum": 1},
                    },
                    "app_url": {
                        "label": "Opus app URL",
                        "description": "Base URL of the Opus web app used for links (default https://app.opus.com).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "proxy_url": {
                        "label": "Proxy URL",
                        "description": "HTTP(S) proxy for every request, e.g. http://proxy.example.com:3128 "
                        "(user:password@ before the host if the proxy asks). Empty: HTTPS_PROXY, HTTP_PROXY "
                        "and NO_PROXY of the environment apply.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "ca_bundle": {
                        "label": "CA bundle",
                        "description": "Path of a PEM file with the CA certificates to trust (your company CA), "
                        "on every worker and the triggerer. Empty: the public CAs of certifi.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "file_hosts": {
                        "label": "File hosts",
                        "description": "Hosts besides the API's that may receive the service key when output "
                        "files are downloaded, comma-separated, e.g. files.opus.com (https) or "
                        "http://files.internal:8080. Files on other hosts are downloaded without the key.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "callback_url": {
                        "label": "Callback URL",
                        "description": "An https URL that Opus POSTs each job's result to when it ends, sent as "
                        "callbackUrl when a job is executed; required by today's Opus API. The provider still "
                        "polls the job's status, so any https endpoint you control will do. Empty: none is sent "
                        "(older Opus deployments).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "max_upload_bytes": {
                        "label": "Largest upload (bytes)",
                        "description": "The largest local file the provider uploads; larger files fail before "
                        "any billed call (default 10485760, Opus's 10 MB limit).",
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "max_download_bytes": {
                        "label": "Largest download (bytes)",
                        "description": "The largest output file the provider downloads, as stored (never "
                        "decompressed); a larger one fails and leaves no file (default 1073741824, 1 GiB).",
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "verify_tls": {
                        "label": "Verify TLS certificates",
                        "description": "Check the certificates of the Opus API and the storage (default on). "
                        "Turn off only to test: the service key is then exposed to the network path.",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                },
            }
        ],
    }
