"""
status.py: the status rules in every wait path, over real HTTP against the emulator's scripted status sequences.

Each scenario scripts the statuses a job reports (``emulator.set_status_sequence``) and runs the same job
through each way a task waits: the hook's blocking wait, the execute operator (blocking and deferred), the
sensor in poke, reschedule and deferrable mode, and the trigger on its own. A deferred task is resumed as
Airflow does it: the trigger is rebuilt from its serialised kwargs, run, and its event handed to the method
the task named.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred
from airflow.sdk import timezone

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.exceptions import OpusJobFailedError, OpusJobTimeoutError
from airflow_provider_opus.sensors.opus import WARNED_STATUSES_KEY, OpusJobSensor
from airflow_provider_opus.status import DEFAULT_STATUS_RULES, StatusRules
from airflow_provider_opus.triggers.opus import OpusJobTrigger
from tests.integration.helpers import execute_op, fast_hook, start_job
from tests.support.task_context import make_context

try:  # what a sensor in reschedule mode raises (common-compat does not map it)
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 3.1: the core's, which its task runner catches
    from airflow.exceptions import AirflowRescheduleException

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.integration

#: Seconds between status checks in every path.
POLL = 0.05
#: Status checks each scripted status before the last is reported for: paced by checks, not time, so
#: every wait path sees every status however slow its first check is on a loaded machine.
CHECKS_PER_STATUS = 2
#: The deadline of a wait that should end by the job's status, long before it.
LONG_TIMEOUT = 30.0
#: The deadline of a wait on a job whose last status is in no list: reached after that status was seen.
SHORT_TIMEOUT = 1.2

UNKNOWN_WARNING = "which this provider does not know"

Outcome = tuple[str, "str | None"]


@dataclass(frozen=True)
class Scenario:
    """A scripted job, the DAG author's words, and what every wait path must make of it."""

    sequence: list[str]
    outcome: Outcome
    warnings: int = 0
    words: dict[str, list[str]] = field(default_factory=dict)

    @property
    def timeout(self) -> float:
        return SHORT_TIMEOUT if self.outcome[0] == "timeout" else LONG_TIMEOUT


SCENARIOS = {
    "waiting words then Completed": Scenario(
        ["QUEUED", "In Progress", "AWAITING REVIEW", "Completed"], ("success", None)
    ),
    "an unknown word then COMPLETED": Scenario(["QUEUED", "Reticulating", "COMPLETED"], ("success", None), warnings=1),
    "ends Cancelled": Scenario(["QUEUED", "In Progress", "Cancelled"], ("failed", "Cancelled")),
    "ends in an unknown word": Scenario(["QUEUED", "Succeeded"], ("timeout", None), warnings=1),
    "the author's running word": Scenario(
        ["QUEUED", "Awaiting Sign-Off", "COMPLETED"],
        ("success", None),
        words={"running_statuses": ["Awaiting Sign-Off"]},
    ),
    "the author's failed word": Scenario(
        ["QUEUED", "on_hold", "COMPLETED"], ("failed", "on_hold"), words={"failed_statuses": ["on_hold"]}
    ),
    "a built-in waiting word without the author's": Scenario(["QUEUED", "on_hold", "COMPLETED"], ("success", None)),
}


# -- the wait paths: each starts (or is given) a job of the scripted workflow, waits, and says how it ended ----


def outcome_of(wait: Callable[[], Any]) -> Outcome:
    try:
        wait()
    except OpusJobFailedError as exc:
        return "failed", exc.status
    except (OpusJobTimeoutError, AirflowSensorTimeout):
        return "timeout", None
    return "success", None


def resumed_after_trigger(task: Any, context: dict[str, Any]) -> Any:
    """Run a deferrable task as Airflow does: defer, rebuild the trigger from its kwargs, run it, resume."""
    with pytest.raises(TaskDeferred) as info:
        task.execute(context)
    _, kwargs = info.value.trigger.serialize()
    events = asyncio.run(_events(OpusJobTrigger(**kwargs)))
    assert len(events) == 1
    return getattr(task, info.value.method_name)(context, events[0], **(info.value.kwargs or {}))


async def _events(trigger: OpusJobTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


def rescheduled(make_sensor: Callable[[], OpusJobSensor], context: dict[str, Any]) -> Any:
    """Run a reschedule-mode sensor as Airflow does: a new task object for every check, at its reschedule date."""
    first_check = timezone.utcnow()
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        try:
            return make_sensor().execute(context)
        except AirflowRescheduleException as exc:
            context["ti"].first_reschedule_date = first_check
            time.sleep(max(0.0, (exc.reschedule_date - timezone.utcnow()).total_seconds()))
    pytest.fail("the reschedule-mode sensor neither finished nor timed out within 60 s")


def sensor(scenario: Scenario, **kwargs: Any) -> OpusJobSensor:
    return OpusJobSensor(
        task_id="wait",
        job_execution_id=start_job(fast_hook()),
        poke_interval=POLL,
        timeout=scenario.timeout,
        opus_retry_delay=0.01,
        **scenario.words,
        **kwargs,
    )


def wait_in_hook(scenario: Scenario) -> Outcome:
    hook = fast_hook()
    job_id = start_job(hook)
    rules = StatusRules(**scenario.words)
    try:
        status = hook.wait_for_job(job_id, POLL, scenario.timeout, status_rules=rules)
    except OpusJobTimeoutError:
        return "timeout", None
    return ("success", None) if DEFAULT_STATUS_RULES.is_success(status) else ("failed", status)


def wait_in_operator(scenario: Scenario) -> Outcome:
    return outcome_of(lambda: execute_op(timeout=scenario.timeout, **scenario.words).execute(make_context()))


def wait_in_deferred_operator(scenario: Scenario) -> Outcome:
    op = execute_op(deferrable=True, timeout=scenario.timeout, **scenario.words)
    return outcome_of(lambda: resumed_after_trigger(op, make_context()))


def wait_in_poke_sensor(scenario: Scenario) -> Outcome:
    return outcome_of(lambda: sensor(scenario, mode="poke").execute(make_context()))


def wait_in_reschedule_sensor(scenario: Scenario) -> Outcome:
    job_id = start_job(fast_hook())
    context = make_context()

    def new_sensor() -> OpusJobSensor:
        return OpusJobSensor(
            task_id="wait",
            job_execution_id=job_id,
            poke_interval=POLL,
            timeout=scenario.timeout,
            mode="reschedule",
            **scenario.words,
        )

    outcome = outcome_of(lambda: rescheduled(new_sensor, context))
    store = context["task_state_store"]
    if scenario.warnings:
        # The warned statuses were kept across reschedules in the task state, and forgotten once the job ended.
        assert ("set", WARNED_STATUSES_KEY) in [(action, key) for action, key, _ in store.history]
        if outcome[0] != "timeout":
            assert WARNED_STATUSES_KEY not in store.values
    return outcome


def wait_in_deferred_sensor(scenario: Scenario) -> Outcome:
    return outcome_of(lambda: resumed_after_trigger(sensor(scenario, deferrable=True), make_context()))


def wait_in_trigger(scenario: Scenario) -> Outcome:
    job_id = start_job(fast_hook())
    trigger = OpusJobTrigger(
        job_id, poll_interval=POLL, retry_delay=0.01, end_time=time.time() + scenario.timeout, **scenario.words
    )
    (event,) = asyncio.run(_events(trigger))
    assert event["job_execution_id"] == job_id
    return event["status"], event["opus_status"] if event["status"] == "failed" else None


WAIT_PATHS: dict[str, Callable[[Scenario], Outcome]] = {
    "hook.wait_for_job": wait_in_hook,
    "operator": wait_in_operator,
    "operator deferrable": wait_in_deferred_operator,
    "sensor poke": wait_in_poke_sensor,
    "sensor reschedule": wait_in_reschedule_sensor,
    "sensor deferrable": wait_in_deferred_sensor,
    "trigger": wait_in_trigger,
}


@pytest.mark.parametrize("path", list(WAIT_PATHS))
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_wait_path_reads_statuses_by_the_same_rules(emulator, capsys, name, path):
    scenario = SCENARIOS[name]
    emulator.set_status_sequence(DEFAULT_WORKFLOW_ID, scenario.sequence, checks_per_status=CHECKS_PER_STATUS)
    capsys.readouterr()

    assert WAIT_PATHS[path](scenario) == scenario.outcome

    out = capsys.readouterr()
    logged = out.out + out.err
    # The wait saw the statuses it waited through: it did not end on the first one it did not know.
    seen = set(re.findall(r"Opus job \w+ is (.+?)(?: \(after \d+ s\))?(?: \[|$)", logged, re.MULTILINE))
    status, failed_status = scenario.outcome
    if status == "failed":
        # It waited through every status before the failed one, and stopped there.
        ended_at = scenario.sequence.index(str(failed_status))
        assert set(scenario.sequence[: ended_at + 1]) <= seen, f"saw {sorted(seen)}"
        assert not seen & set(scenario.sequence[ended_at + 1 :]), f"saw {sorted(seen)}"
    else:
        assert set(scenario.sequence) <= seen, f"saw {sorted(seen)}"
    assert logged.count(UNKNOWN_WARNING) == scenario.warnings, logged
    if scenario.warnings:
        unknown = next(word for word in scenario.sequence if DEFAULT_STATUS_RULES.outcome(word).name == "UNKNOWN")
        assert f"pass failed_statuses=[{unknown!r}]" in logged and f"running_statuses=[{unknown!r}]" in logged
