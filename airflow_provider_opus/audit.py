"""A job's audit log in either API generation, and what of it explains a failure.

The older reference answers ``GET /job/{id}/audit`` with ``{"auditTrail": [{timestamp, actor, action}]}``;
today's answers with a node-level object (``nb_nodes``, ``executed_nodes``, ``running_node``,
``failed_nodes``, ``audit.nodes_execution_data``, ...). :func:`audit_log_from` checks either and hands it
on as Opus sent it (the trail's list, or the whole node-level object); :func:`failure_details` takes the
few lines a failed job's error carries from either; :func:`running_node` names the node a job is at.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_opus.exceptions import OpusResponseError, describe_value

if TYPE_CHECKING:
    from collections.abc import Mapping

#: How many entries (older trail) or failed nodes (node-level) a failure message carries.
FAILURE_DETAILS_LENGTH = 5
#: The longest text of one failed node's execution data in a message.
MAX_NODE_DATA_CHARS = 300
#: The fields that make an audit answer node-level.
NODE_LEVEL_FIELDS = ("nb_nodes", "executed_nodes", "failed_nodes", "running_node", "audit")
# Execution data under keys like these is left out of messages: it may hold credentials.
_SECRET_WORDS = ("key", "token", "secret", "password", "authorization", "credential", "signature")

AuditLog = list[dict[str, Any]] | dict[str, Any]


def audit_log_from(body: Mapping[str, Any], path: str) -> AuditLog:
    """
    Return an audit answer as Opus sent it, after checking its shape.

    :param body: the parsed ``GET /job/{id}/audit`` response.
    :param path: the path called, for errors.
    :return: the ``auditTrail`` list (older reference), or the node-level object (today's).
    :raises OpusResponseError: neither shape, or a field of the wrong type.
    """
    if "auditTrail" in body:
        trail = body["auditTrail"]
        if not isinstance(trail, list) or not all(isinstance(entry, dict) for entry in trail):
            raise OpusResponseError("GET", path, "auditTrail is not a list of objects")
        return trail
    if not any(name in body for name in NODE_LEVEL_FIELDS):
        keys = ", ".join(sorted(map(str, body))) or "none"
        raise OpusResponseError(
            "GET", path, f"the audit log holds neither auditTrail nor the node-level fields (keys: {keys})"
        )
    for name in ("executed_nodes", "failed_nodes", "remaining_nodes_to_execute"):
        if body.get(name) is not None and not isinstance(body[name], list):
            raise OpusResponseError("GET", path, f"{name} is {describe_value(body[name])}, expected a list")
    for name in ("running_node", "next_node_to_execute"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise OpusResponseError("GET", path, f"{name} is {describe_value(body[name])}, expected a string or null")
    audit = body.get("audit")
    if audit is not None and not (isinstance(audit, dict) and isinstance(audit.get("nodes_execution_data", {}), dict)):
        raise OpusResponseError("GET", path, "audit is not an object with nodes_execution_data as an object")
    return dict(body)


def failure_details(audit_log: AuditLog) -> list[dict[str, Any]]:
    """
    Return what of an audit log explains a failure: its last entries, or its failed nodes.

    A node-level log gives one entry per failed node, ``{"node": ..., "execution_data": <text>}``, the
    text compact, bounded and without fields that may hold credentials.

    :param audit_log: what :func:`audit_log_from` returned.
    """
    if isinstance(audit_log, list):
        return audit_log[-FAILURE_DETAILS_LENGTH:]
    data = audit_log.get("audit")
    execution_data = data.get("nodes_execution_data") if isinstance(data, dict) else None
    details = []
    for node in (audit_log.get("failed_nodes") or [])[:FAILURE_DETAILS_LENGTH]:
        node_data = execution_data.get(node) if isinstance(execution_data, dict) and isinstance(node, str) else None
        details.append({"node": str(node), "execution_data": _bounded_text(node_data)})
    return details


def running_node(audit_log: AuditLog) -> str | None:
    """
    Return the node a job is running now, when a node-level log names one.

    :param audit_log: what :func:`audit_log_from` returned.
    """
    node = audit_log.get("running_node") if isinstance(audit_log, dict) else None
    return node if isinstance(node, str) and node else None


def _bounded_text(value: Any) -> str:
    """Return execution data as one short line of JSON, fields that may hold credentials left out."""
    text = json.dumps(_without_secrets(value), default=str, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= MAX_NODE_DATA_CHARS else text[: MAX_NODE_DATA_CHARS - 3] + "..."


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_secrets(item)
            for key, item in value.items()
            if not any(word in str(key).lower() for word in _SECRET_WORDS)
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value
