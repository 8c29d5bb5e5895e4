"""
The current generation's audit: which node of a job's workflow ran, runs, failed or is still to come.

A job's nodes share its run equally: with three nodes and a 3 s run, the first runs for the first
second, and so on. A job that fails (a missing input, a file never uploaded, a v2 input sent wrongly)
fails at its Input node, which runs the whole time and then fails; every node after it fails with it,
as a failed run's ``nodes_execution_data`` shows live. Like the status, the audit is computed from the
job's timestamps when asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_opus.emulator.jobs import is_completed, is_failed, iso

if TYPE_CHECKING:
    from airflow_provider_opus.emulator.jobs import Job

#: The nodes of a workflow in the documented form, which does not describe its graph.
DEFAULT_NODES = ("workflow_input", "workflow_agent", "workflow_output")
_OVERRIDE_ERROR = "Job status set to {status} (emulator override)"


def job_nodes(job: Job) -> tuple[str, ...]:
    """Return a job's nodes in the order they run: the graph's, or :data:`DEFAULT_NODES`."""
    graph = job.workflow.graph
    return graph.nodes if graph is not None else DEFAULT_NODES


def node_audit(job: Job, now: float) -> dict[str, Any]:
    """
    Build the ``GET /job/{id}/audit`` body of the current generation.

    :param job: the job.
    :param now: the time to describe it at.
    :return: ``{"nb_nodes", "executed_nodes", "nb_executed_nodes", "running_node", "next_node_to_execute",
        "remaining_nodes_to_execute", "failed_nodes", "nb_failed_nodes", "audit": {"nodes_execution_data"}}``;
        ``running_node`` and ``next_node_to_execute`` are ``""`` when there is none.
    """
    nodes = job_nodes(job)
    data: dict[str, dict[str, Any]] = {}
    executed: list[str] = []
    failed: list[str] = []
    running = ""
    if job.executed_at is None or job.finishes_at is None:
        if job.override is not None and is_failed(job.override[0]):
            # Forced to FAILED before it was executed: its first node is the one that failed.
            data[nodes[0]] = {**_entry("failed", job.override[1], job.override[1]), "error": _failure_text(job)}
            failed.append(nodes[0])
        return _body(nodes, executed, running, failed, data)
    start, end = job.executed_at, job.finishes_at
    slot = (end - start) / len(nodes)
    outcome, index = _outcome(job, now, len(nodes))
    for position, node in enumerate(nodes[:index]):
        data[node] = _entry("completed", start + position * slot, start + (position + 1) * slot)
        executed.append(node)
    # A job that will fail runs its Input node the whole time.
    began = start if job.failure is not None else start + index * slot
    if outcome == "running":
        running = nodes[index]
        data[running] = _entry("running", began, None)
    elif outcome == "failed":
        failed_at = end if job.override is None else min(end, job.override[1])
        data[nodes[index]] = {**_entry("failed", began, failed_at), "error": _failure_text(job)}
        failed.append(nodes[index])
        for node in nodes[index + 1 :]:
            data[node] = {**_entry("failed", failed_at, failed_at), "error": f"Upstream node {nodes[index]} failed"}
            failed.append(node)
    return _body(nodes, executed, running, failed, data)


def _outcome(job: Job, now: float, count: int) -> tuple[str, int]:
    """
    Return where an executed job stands: ``running``, ``completed``, ``failed`` or ``stopped``, and at which node.

    ``completed`` is past every node (the index is ``count``); ``stopped`` (a final status other than
    COMPLETED or FAILED) is before the last node, which never runs.
    """
    override = job.override
    if override is not None and is_completed(override[0]):
        return "completed", count
    # A forced status freezes the course of the job at the moment it was forced.
    outcome, index = _course(job, now if override is None else min(now, override[1]), count)
    if override is not None and is_failed(override[0]):
        return "failed", min(index, count - 1)
    return outcome, index


def _course(job: Job, at: float, count: int) -> tuple[str, int]:
    """Return where a job's own course (its duration, status sequence and failure) has it at ``at``."""
    assert job.executed_at is not None and job.finishes_at is not None
    if job.timeline is not None and job.checks_per_status is not None:
        steps = len(job.timeline) - 1
        step = min(job.checks // job.checks_per_status, steps)
        ended, fraction = step == steps, step / max(steps, 1)
    else:
        duration = job.finishes_at - job.executed_at
        ended = at >= job.finishes_at
        fraction = 1.0 if duration <= 0 else (at - job.executed_at) / duration
    if job.failure is not None:
        return ("failed" if ended else "running"), 0
    if not ended:
        return "running", min(int(fraction * count), count - 1)
    final = job.timeline[-1][1] if job.timeline is not None else "COMPLETED"
    if is_completed(final):
        return "completed", count
    return ("failed" if is_failed(final) else "stopped"), count - 1


def _failure_text(job: Job) -> str:
    """Say why the failed node failed: the job's failure, or what forced or scripted the FAILED status."""
    if job.failure is not None:
        return job.failure.removeprefix("Job failed: ")
    if job.override is not None:
        return _OVERRIDE_ERROR.format(status=job.override[0])
    return "Job ended with status FAILED (emulator status sequence)"


def _entry(status: str, started: float, ended: float | None) -> dict[str, Any]:
    return {"status": status, "started_at": iso(started), "ended_at": None if ended is None else iso(ended)}


def _body(
    nodes: tuple[str, ...], executed: list[str], running: str, failed: list[str], data: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    seen = {*executed, *failed, running}
    remaining = [node for node in nodes if node not in seen]
    return {
        "nb_nodes": len(nodes),
        "executed_nodes": executed,
        "nb_executed_nodes": len(executed),
        "running_node": running,
        "next_node_to_execute": remaining[0] if remaining else "",
        "remaining_nodes_to_execute": remaining,
        "failed_nodes": failed,
        "nb_failed_nodes": len(failed),
        "audit": {"nodes_execution_data": data},
    }
