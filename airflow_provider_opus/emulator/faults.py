"""Fault specifications: what an injected fault does to the request that consumes it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_opus.emulator.errors import BadRequest

API_ENDPOINTS = (
    "get_workflow",
    "initiate_job",
    "get_upload_url",
    "execute_job",
    "get_job_status",
    "get_job_results",
    "get_job_audit_log",
)
STORAGE_ENDPOINTS = ("storage_put", "download_output_file")
ENDPOINTS = API_ENDPOINTS + STORAGE_ENDPOINTS

_FAULT_KEYS = frozenset({"status", "retry_after", "body", "json", "delay", "drop", "times"})
_DEFAULT_BODY = json.dumps({"message": "injected fault"}).encode()


@dataclass(frozen=True)
class Fault:
    """
    One injected fault, consumed by one request.

    :param spec: the fault as given (without ``times``), echoed in the request log.
    :param status: answer with this status instead of processing the request.
    :param body: response body for ``status``.
    :param media_type: content type of ``body``.
    :param retry_after: ``Retry-After`` header value for ``status``.
    :param delay: seconds to hold the response back (the request is handled at once); with a status or a
        drop, seconds to wait before applying it.
    :param drop: close the connection "before" processing, or "after" it, partway through the response.
    """

    spec: dict[str, Any]
    status: int | None = None
    body: bytes = _DEFAULT_BODY
    media_type: str = "application/json"
    retry_after: str | None = None
    delay: float = 0.0
    drop: Literal["before", "after"] | None = None


def check_endpoint(endpoint: str) -> None:
    """Check that faults can be injected for ``endpoint``; raise ``BadRequest`` if not."""
    if endpoint not in ENDPOINTS:
        raise BadRequest(f"Unknown endpoint {endpoint!r}; expected one of: {', '.join(ENDPOINTS)}")


def parse_faults(spec: Mapping[str, Any]) -> list[Fault]:
    """
    Validate a fault specification and expand its ``times`` into that many faults.

    :param spec: a dict with any of ``status``, ``retry_after``, ``body``, ``json``, ``delay``,
        ``drop`` and ``times``; see docs/emulator.md.
    :raises BadRequest: naming the offending key.
    """
    if not isinstance(spec, Mapping):
        raise BadRequest("A fault must be an object")
    unknown = sorted(set(spec) - _FAULT_KEYS)
    if unknown:
        raise BadRequest(f"Unknown fault key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FAULT_KEYS))}")
    if not {"status", "delay", "drop"} & set(spec):
        raise BadRequest("A fault needs at least one of status, delay or drop")

    status = spec.get("status")
    if status is not None and (not _is_int(status) or not 100 <= status <= 599):
        raise BadRequest("Fault status must be an HTTP status code (100-599)")
    drop = spec.get("drop")
    if drop not in (None, "before", "after"):
        raise BadRequest('Fault drop must be "before" or "after"')
    if status is not None and drop is not None:
        raise BadRequest("A fault cannot both answer with a status and drop the connection")
    if status is None and {"retry_after", "body", "json"} & set(spec):
        raise BadRequest("Fault retry_after, body and json need a status")
    if "body" in spec and "json" in spec:
        raise BadRequest("A fault takes body or json, not both")
    if "body" in spec and not isinstance(spec["body"], str):
        raise BadRequest("Fault body must be a string")
    retry_after = spec.get("retry_after")
    if retry_after is not None and not isinstance(retry_after, str) and not _is_int(retry_after):
        raise BadRequest("Fault retry_after must be a string or an integer")
    delay = spec.get("delay", 0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise BadRequest("Fault delay must be a non-negative number of seconds")
    times = spec.get("times", 1)
    if not _is_int(times) or times < 1:
        raise BadRequest("Fault times must be a positive integer")

    body, media_type = _DEFAULT_BODY, "application/json"
    if "json" in spec:
        body = json.dumps(spec["json"]).encode()
    elif "body" in spec:
        # String bodies stand in for what proxies and gateways send, which is usually HTML.
        body, media_type = spec["body"].encode(), "text/html"
    fault = Fault(
        spec={key: value for key, value in spec.items() if key != "times"},
        status=status,
        body=body,
        media_type=media_type,
        retry_after=None if retry_after is None else str(retry_after),
        delay=float(delay),
        drop=drop,
    )
    return [fault] * times


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
