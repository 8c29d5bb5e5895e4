"""
The base of :class:`~airflow_provider_opus.emulator.state.EmulatorState` and of its parts in other modules.

It holds what they share: the lock, the attributes, and finding a workflow or a job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_opus.emulator.errors import NotFound

if TYPE_CHECKING:
    import threading

    from airflow_provider_opus.emulator.jobs import Job, Upload
    from airflow_provider_opus.emulator.workflows import Workflow


class StateBase:
    """What every part of the emulator state uses; :class:`EmulatorState` sets the attributes."""

    api: str
    storage_url: str
    workflows: dict[str, Workflow]
    _lock: threading.Lock
    _jobs: dict[str, Job]
    _uploads: dict[str, Upload]

    def _workflow(self, workflow_id: str) -> Workflow:
        """Return a workflow the generation in force serves; raise ``NotFound`` for any other id."""
        workflow = self.workflows.get(workflow_id)
        # A workflow of the other generation only (the bundled current-only ones in legacy) is not there.
        if workflow is None or not workflow.served_in(self.api):
            raise NotFound(f"Workflow {workflow_id} not found")
        return workflow

    def _job(self, job_id: str) -> Job:
        """Return a job; raise ``NotFound`` for an unknown id."""
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"Job {job_id} not found")
        return job
