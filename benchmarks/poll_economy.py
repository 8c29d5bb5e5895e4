"""
Poll economy: status requests and detection delay per job, fixed vs growing poll interval.

The growing interval is the provider's ``max_poll_interval`` (``airflow_provider_opus.polling``): each
wait is a tenth of the time waited so far, at least ``poll_interval`` and at most ``max_poll_interval``.

Three layers, each checking the next:

1. a closed-form model (``model``): polls at t = w1, w1 + w2, ... after the trigger starts (it waits
   before every poll, the first one included); a job of duration d is seen at the first poll at or after d;
2. the real trigger code on a virtual clock (``virtual_clock_run``): ``OpusJobTrigger.run`` with
   ``time`` and ``asyncio.sleep`` replaced and a fake status source, so a one-day job takes
   milliseconds; it must agree with the model exactly;
3. one real short run (``validate``): 40 real triggers against the emulator (in its own process) with
   the intervals scaled down (fixed 1 s; growing from 0.25 s up to 2 s); per job, the model's polls and
   delay, given the measured trigger start and job end, against the emulator's request log and the
   event time.

Reproduce::

    .venv/bin/python -m benchmarks.poll_economy
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    BenchEmulator,
    median,
    percentile,
    private_stdout,
    quiet_stdout,
    save_result,
)

DURATIONS = {"10 s": 10.0, "10 min": 600.0, "1 day": 86_400.0}


@dataclass(frozen=True)
class Policy:
    """How a trigger spaces its polls: its ``poll_interval`` and ``max_poll_interval``."""

    name: str
    poll_interval: float
    max_poll_interval: float | None = None

    def trigger_kwargs(self) -> dict[str, Any]:
        return {"poll_interval": self.poll_interval, "max_poll_interval": self.max_poll_interval}


POLICIES = [
    Policy("fixed 30 s (default)", 30.0),
    Policy("fixed 5 min", 300.0),
    Policy("growing: poll_interval 30 s, max_poll_interval 15 min", 30.0, 900.0),
    Policy("growing: poll_interval 30 s, max_poll_interval 1 h", 30.0, 3600.0),
]


def model(duration: float, policy: Policy) -> tuple[int, float]:
    """
    Polls of a trigger that starts at t=0 until it sees a job that ends at ``duration``.

    The trigger waits before every poll, its first one included (the task checked just before it
    deferred): polls at w1, w1 + w2, ... (response time ignored).

    :return: (trigger polls, seconds from the job's end to the poll that sees it).
    """
    from airflow_provider_opus.polling import next_poll_wait

    t, polls = 0.0, 0
    while True:
        wait = next_poll_wait(policy.poll_interval, policy.max_poll_interval, t)
        if policy.max_poll_interval is None or wait >= policy.max_poll_interval:
            # From here the interval is constant: jump straight to the poll that sees the job.
            steps = max(1, math.ceil((duration - t) / wait - 1e-9))
            return polls + steps, t + steps * wait - duration
        t += wait
        polls += 1
        if t >= duration:
            return polls, t - duration


def table(samples: int = 2000, seed: int = 7) -> list[dict[str, Any]]:
    """
    For each job length and policy: status requests and detection delay, averaged over jobs whose
    length varies by +-10% around the nominal one (so no result hangs on an exact alignment).

    Requests count the operator's one status check before it defers, plus the trigger's polls.
    """
    rng = random.Random(seed)
    rows = []
    for label, nominal in DURATIONS.items():
        lengths = [nominal * rng.uniform(0.9, 1.1) for _ in range(samples)]
        for policy in POLICIES:
            outcomes = [model(length, policy) for length in lengths]
            requests = [1 + polls for polls, _ in outcomes]
            delays = [delay for _, delay in outcomes]
            rows.append(
                {
                    "job": label,
                    "duration_s": nominal,
                    "policy": policy.name,
                    "requests_mean": sum(requests) / samples,
                    "requests_at_nominal": 1 + model(nominal, policy)[0],
                    "delay_mean_s": sum(delays) / samples,
                    "delay_p95_s": percentile(delays, 95),
                    "delay_max_s": max(delays),
                }
            )
    return rows


def request_curves(horizon: float = DURATIONS["1 day"], points: int = 97) -> dict[str, list[list[float]]]:
    """
    Status requests made so far by a job still running, per policy, at ``points`` even steps over ``horizon``.

    From the model: the operator's one check before it defers, then the trigger's polls. Each curve is a list of
    ``[hours since the job started, requests so far]`` (the charts of docs/benchmarks.md draw them).
    """
    from airflow_provider_opus.polling import next_poll_wait

    curves = {}
    for policy in POLICIES:
        polls, t, curve = [], 0.0, []
        while t < horizon:
            t += next_poll_wait(policy.poll_interval, policy.max_poll_interval, t)
            polls.append(t)
        for index in range(points):
            at = horizon * index / (points - 1)
            curve.append([round(at / 3600, 4), 1 + sum(1 for poll in polls if poll <= at)])
        curves[policy.name] = curve
    return curves


# -- the real trigger code on a virtual clock ---------------------------------------------------------


def virtual_clock_run(duration: float, policy: Policy) -> tuple[int, float]:
    """
    Run the trigger's own ``run()`` with a virtual clock; returns (polls, detection delay).
    """
    from airflow_provider_opus.triggers import opus as trigger_module

    clock = {"now": 1_000_000.0}
    executed_at = clock["now"]
    polls: list[float] = []

    async def sleep(seconds: float) -> None:
        clock["now"] += seconds
        await asyncio.sleep(0)

    fake_time = types.SimpleNamespace(time=lambda: clock["now"], monotonic=lambda: clock["now"])
    fake_asyncio = types.SimpleNamespace(sleep=sleep)

    class FakeHook:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def get_job_status(self, job_id: str) -> str:
            polls.append(clock["now"])
            return "COMPLETED" if clock["now"] >= executed_at + duration else "IN PROGRESS"

        async def get_settings(self) -> None:
            pass

        async def close(self) -> None:
            pass

    patched = {
        (trigger_module, "time"): fake_time,
        (trigger_module, "asyncio"): fake_asyncio,
        (trigger_module, "OpusAsyncHook"): FakeHook,
    }
    saved = {key: getattr(*key) for key in patched}
    for (module, name), value in patched.items():
        setattr(module, name, value)
    try:
        trigger = trigger_module.OpusJobTrigger("job", **policy.trigger_kwargs())

        async def consume() -> list[Any]:
            return [event async for event in trigger.run()]

        events = asyncio.run(consume())
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)
    assert events and events[-1].payload["status"] == "success", events
    return len(polls), polls[-1] - (executed_at + duration)


def virtual_clock_check() -> list[dict[str, Any]]:
    with quiet_stdout():  # the trigger logs every status change, thousands of times here
        return _virtual_clock_rows()


def _virtual_clock_rows() -> list[dict[str, Any]]:
    rows = []
    for label, duration in DURATIONS.items():
        for policy in POLICIES:
            started = time.perf_counter()
            polls, delay = virtual_clock_run(duration, policy)
            model_polls, model_delay = model(duration, policy)
            rows.append(
                {
                    "job": label,
                    "policy": policy.name,
                    "trigger_polls": polls,
                    "model_polls": model_polls,
                    "delay_s": delay,
                    "model_delay_s": model_delay,
                    "agrees": polls == model_polls and abs(delay - model_delay) < 1e-6,
                    "seconds_to_simulate": time.perf_counter() - started,
                }
            )
    return rows


# -- one real short run against the emulator ------------------------------------------------------------

VALIDATION_POLICIES = [
    Policy("fixed 1 s", 1.0),
    Policy("growing: poll_interval 0.25 s, max_poll_interval 2 s", 0.25, 2.0),
]


def _validate_client(policy_index: int) -> None:
    """Client process: one trigger per job id read from stdin; prints start and event times."""
    out = private_stdout()
    from airflow_provider_opus.triggers.opus import OpusJobTrigger

    policy = VALIDATION_POLICIES[policy_index]
    out.write(json.dumps({"ready": True}) + "\n")
    ids = json.loads(sys.stdin.readline())["ids"]
    starts: dict[str, float] = {}
    events: dict[str, float] = {}

    async def wait(job_id: str) -> None:
        trigger = OpusJobTrigger(job_id, **policy.trigger_kwargs())
        starts[job_id] = time.time()
        async for event in trigger.run():
            assert event.payload["status"] == "success", event.payload
            events[job_id] = time.time()

    async def main() -> None:
        await asyncio.gather(*(wait(job_id) for job_id in ids))

    asyncio.run(main())
    out.write(json.dumps({"starts": starts, "events": events}) + "\n")


def validate(jobs: int = 40, duration: float = 1.0, jitter: float = 4.0) -> list[dict[str, Any]]:
    results = []
    with BenchEmulator() as emulator:
        for index, policy in enumerate(VALIDATION_POLICIES):
            emulator.call("reset")
            client = emulator.start_client(
                "benchmarks.poll_economy", ["--validate-client", str(index)], subprocess.DEVNULL
            )
            assert client.stdin is not None and client.stdout is not None
            try:
                client.stdout.readline()
                ids = emulator.call("create_jobs", n=jobs, duration=duration, jitter=jitter)["ids"]
                client.stdin.write(json.dumps({"ids": ids}) + "\n")
                client.stdin.flush()
                measured = json.loads(client.stdout.readline())
                client.wait(30)
            finally:
                if client.poll() is None:
                    client.kill()
                    client.wait()
            finishes = {job["id"]: job["finishes_at"] for job in emulator.call("jobs")["jobs"]}
            polls_by_job: dict[str, list[float]] = {job_id: [] for job_id in ids}
            for entry in emulator.call("requests", endpoint="get_job_status")["requests"]:
                polls_by_job[entry["path"].split("/")[2]].append(entry["time"])
            per_job = []
            for job_id in ids:
                # The model's clock starts one (first) wait before the trigger's first poll as the emulator
                # logged it; that leaves out the one-off cost of the first call (connection lookup, session).
                start = measured["starts"][job_id]
                first_poll = min(polls_by_job[job_id])
                model_polls, model_delay = model(finishes[job_id] - (first_poll - policy.poll_interval), policy)
                per_job.append(
                    {
                        "polls": len(polls_by_job[job_id]),
                        "first_poll_after_start_s": first_poll - start,
                        "model_polls": model_polls,
                        "delay_s": measured["events"][job_id] - finishes[job_id],
                        "model_delay_s": model_delay,
                    }
                )
            results.append(
                {
                    "policy": policy.name,
                    "jobs": jobs,
                    "job_duration": f"{duration:g} + U(0, {jitter:g}) s",
                    "polls_total": sum(job["polls"] for job in per_job),
                    "model_polls_total": sum(job["model_polls"] for job in per_job),
                    "jobs_with_exact_poll_count": sum(1 for job in per_job if job["polls"] == job["model_polls"]),
                    "jobs_within_one_poll": sum(1 for job in per_job if abs(job["polls"] - job["model_polls"]) <= 1),
                    "delay_median_s": median(job["delay_s"] for job in per_job),
                    "model_delay_median_s": median(job["model_delay_s"] for job in per_job),
                    "delay_error_median_s": median(job["delay_s"] - job["model_delay_s"] for job in per_job),
                    "delay_error_max_s": max(job["delay_s"] - job["model_delay_s"] for job in per_job),
                    "per_job": per_job,
                }
            )
    return results


def run() -> dict[str, Any]:
    return {
        "policies": [policy.__dict__ for policy in POLICIES],
        "table": table(),
        "request_curves": request_curves(),
        "virtual_clock": virtual_clock_check(),
        "validation": validate(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validate-client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/poll_economy.json")
    args = parser.parse_args(argv)
    if args.validate_client is not None:
        _validate_client(args.validate_client)
        return 0
    result = run()
    for row in result["table"]:
        print(
            f"{row['job']:7s} {row['policy']:32s} requests {row['requests_mean']:8.1f}"
            f"  delay mean {row['delay_mean_s']:6.1f} s  max {row['delay_max_s']:6.1f} s"
        )
    for row in result["virtual_clock"]:
        print(f"virtual clock {row['job']:7s} {row['policy']:32s} polls {row['trigger_polls']} agrees {row['agrees']}")
    for row in result["validation"]:
        print({k: v for k, v in row.items() if k != "per_job"})
    if args.save:
        save_result("poll_economy", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
