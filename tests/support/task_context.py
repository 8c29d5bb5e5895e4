"""A task context good enough to run operators outside the task runner, against the emulator, and a fake clock."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class FakeTaskStateStore:
    """The task state store's get/set, kept across "tries" the way Airflow keeps it."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.history: list[tuple[str, str, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.history.append(("set", key, value))
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.history.append(("delete", key, None))
        self.values.pop(key, None)


class FakeTaskInstance:
    """Records XCom pushes; has the start of the try and, in reschedule mode, of the first poke."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}
        self.stats_tags: dict[str, str] = {}
        self.start_date: datetime | None = None
        self.first_reschedule_date: datetime | None = None

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first_reschedule_date


class FakeOutletEvent:
    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}


class FakeOutletEvents:
    """``outlet_events``: one event per asset, found by its name and URI (Airflow 3.1's Asset is unhashable)."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], FakeOutletEvent] = {}

    def __getitem__(self, asset: Any) -> FakeOutletEvent:
        return self.events.setdefault((asset.name, asset.uri), FakeOutletEvent())


def make_context(store: FakeTaskStateStore | None = None) -> dict[str, Any]:
    """A context with a recording ti, a task state store and outlet events."""
    return {
        "ti": FakeTaskInstance(),
        "dag": SimpleNamespace(dag_id="opus_dag"),
        "run_id": "manual__2026-01-01",
        "task_state_store": store if store is not None else FakeTaskStateStore(),
        "outlet_events": FakeOutletEvents(),
    }


#: Inputs that fill every required input of the emulator's default workflow.
VALID_INPUTS = {
    "Customer Name": "ACME GmbH",
    "Threshold": 0.8,
    "Invoice": "https://files.opus.com/media/private/uploaded/media_invoice.pdf",
    "Due Date": "2026-12-01",
}


class FakeClock:
    """
    Stands in for a module's ``time`` (and ``asyncio.sleep``): sleeps are recorded and advance the clock.

    :param now: the clock's start.
    :param on_sleep: called after each sleep, e.g. to end a job once enough simulated time passed.
    """

    def __init__(self, now: float = 1_000.0, on_sleep: Callable[[FakeClock], None] | None = None) -> None:
        self.now, self.on_sleep = now, on_sleep
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    monotonic = time

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)
