"""audit.py: the audit log of either generation, and what of it explains a failure."""

from __future__ import annotations

import pytest

from airflow_provider_opus.audit import MAX_NODE_DATA_CHARS, audit_log_from, failure_details, running_node
from airflow_provider_opus.exceptions import OpusJobFailedError, OpusResponseError

TRAIL = [{"timestamp": f"t{i}", "actor": "system", "action": f"step {i}"} for i in range(8)]
NODE_LEVEL = {
    "nb_nodes": 3,
    "executed_nodes": ["input"],
    "nb_executed_nodes": 1,
    "running_node": None,
    "next_node_to_execute": "",
    "remaining_nodes_to_execute": [],
    "failed_nodes": ["extract"],
    "nb_failed_nodes": 1,
    "audit": {
        "nodes_execution_data": {
            "input": {"status": "done"},
            "extract": {"status": "failed", "error": "PDF unreadable", "api_key": "sk-secret", "note": "x" * 500},
        }
    },
}


def test_the_older_trail_is_its_list():
    assert audit_log_from({"jobExecutionId": "j", "auditTrail": TRAIL}, "/p") == TRAIL
    assert failure_details(TRAIL) == TRAIL[-5:]


def test_the_node_level_log_is_kept_as_sent():
    assert audit_log_from(NODE_LEVEL, "/p") == NODE_LEVEL


def test_a_failed_node_is_named_with_bounded_execution_data_and_no_secret_field():
    [detail] = failure_details(NODE_LEVEL)
    assert detail["node"] == "extract"
    assert '"error":"PDF unreadable"' in detail["execution_data"]
    assert "sk-secret" not in detail["execution_data"] and "api_key" not in detail["execution_data"]
    assert len(detail["execution_data"]) == MAX_NODE_DATA_CHARS


def test_a_failed_jobs_error_has_one_line_a_failed_node():
    many = {**NODE_LEVEL, "failed_nodes": ["extract", "classify"]}
    message = str(OpusJobFailedError("j1", "FAILED", failure_details(many)))
    lines = message.splitlines()
    assert lines[0] == "Opus job j1 ended with status 'FAILED'. Failed nodes:"
    assert lines[1].startswith('  node extract: {"error":"PDF unreadable"')
    assert lines[2] == "  node classify: null"


def test_the_running_node():
    assert running_node({**NODE_LEVEL, "running_node": "extract"}) == "extract"
    assert running_node(NODE_LEVEL) is None
    assert running_node(TRAIL) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"jobExecutionId": "j"}, "neither auditTrail nor the node-level fields \\(keys: jobExecutionId\\)"),
        ({"auditTrail": "x"}, "auditTrail is not a list of objects"),
        ({**NODE_LEVEL, "failed_nodes": "extract"}, "failed_nodes is 'extract', expected a list"),
        ({**NODE_LEVEL, "running_node": 3}, "running_node is int 3, expected a string or null"),
        ({**NODE_LEVEL, "audit": []}, "audit is not an object"),
    ],
)
def test_an_odd_audit_answer_is_a_response_error(body, message):
    with pytest.raises(OpusResponseError, match=message):
        audit_log_from(body, "/job/j/audit")
