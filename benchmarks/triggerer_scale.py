"""
Triggerer scale: N concurrent Opus job waiters in one event loop against the emulator.

Each run is a fresh client process (so peak RSS is its own) against the emulator in another process
(so the emulator's CPU is not counted). The emulator executes N jobs of ``duration + U(0, jitter)``
seconds; the client starts N waiters, each after a random offset in [0, poll_interval) (triggers reach
a triggerer spread over time), and measures wall time until the last event, its own CPU, peak RSS
growth and event-loop lag (a ticker task that sleeps 10 ms and records how late it wakes). The
emulator counts the status polls and the TCP connections it accepted.

Variants (what each waiter does every poll_interval until the status is not ``IN PROGRESS``; like the
provider's trigger, every waiter waits one interval before its first poll):

* ``aiohttp_shared``: raw ``aiohttp`` GET + ``json.loads`` with ONE shared ClientSession (the floor);
* ``aiohttp_per_job``: the same with a ClientSession per waiter;
* ``httpx_shared``: raw ``httpx.AsyncClient``, one shared client (limits matched to aiohttp's 100);
* ``trigger``: the provider's ``OpusJobTrigger.run()`` (an OpusAsyncHook per trigger; the hooks share one
  aiohttp session per event loop and connection, and the connection settings read once per
  ``[opus] connection_cache_seconds``);
* ``trigger_uncached``: the same with ``[opus] connection_cache_seconds`` 0: every trigger reads its Airflow
  connection when it starts (the trigger before that cache);
* ``to_thread``: a sync ``OpusHook`` per waiter called through ``asyncio.to_thread`` (the naive provider);
* ``trigger_before``: ``trigger`` as another commit has it (``--before REF``): this client, the same
  measuring code, with that commit's ``airflow_provider_opus`` first on ``sys.path``, in the same rounds: a
  change measured against the code before it on the same machine state.

Scenarios are named by N (``1000``), or ``1000-burst`` for 1,000 waiters that all arrive at once, and
``1000-burst-collected`` for the same after a ``gc.collect()`` just before they arrive.

Why the second burst: a fresh client has just imported Airflow, and whether its first full (generation 2)
collection, 100-250 ms over Airflow's heap, falls while the waiters start or just after (at their first polls)
is decided by a few objects more or less, in the imports or in a start. ``1000-burst`` keeps that as it falls;
``1000-burst-collected`` starts every variant from the same collector state, so its stall is the starts' own
work. Each run also counts the collections of each generation begun while the waiters start
(``start_gc_gen0`` ...): more young collections per start is more allocation per start, the cost that moves a
full collection into the window.

Reproduce (the whole plan, or e.g. one size and three variants, or the burst)::

    .venv/bin/python -m benchmarks.triggerer_scale
    .venv/bin/python -m benchmarks.triggerer_scale --n 5000 --variants aiohttp_shared,trigger,trigger_uncached
    .venv/bin/python -m benchmarks.triggerer_scale --scenarios 1000-burst
    .venv/bin/python -m benchmarks.triggerer_scale --scenarios 1000 5000 1000-burst --before 93bfb29
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import random
import select
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    ROOT,
    SERVICE_KEY,
    BenchEmulator,
    load_result,
    median,
    peak_rss_mib,
    percentile,
    private_stdout,
    reset_peak_rss,
    rss_mib,
    save_result,
    source_tree,
)

VARIANTS = (
    "aiohttp_shared",
    "aiohttp_per_job",
    "httpx_shared",
    "trigger",
    "trigger_uncached",
    "to_thread",
    "trigger_before",
)
#: The variant run from the source tree of ``--before``'s commit: its client is that commit's ``trigger``.
BEFORE = "trigger_before"
TICK = 0.010
IN_PROGRESS = "IN PROGRESS"


# -- the client process ------------------------------------------------------------------------------


def _idle_loop_cpu(seconds: float = 0.5) -> float:
    """CPU seconds per second of an event loop running only the lag ticker (subtracted from each run)."""

    async def tick() -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await asyncio.sleep(TICK)

    cpu0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(tick())
    return (time.process_time() - cpu0) / (time.perf_counter() - t0)


def _client_main(
    variant: str, poll_interval: float, time_cap: float, arrival: float, gc_freeze: bool, gc_collect_first: bool = False
) -> None:
    import gc
    import logging

    out = private_stdout()
    if variant == "trigger_uncached":
        from airflow_provider_opus.connection_cache import CONFIG_ENV

        os.environ[CONFIG_ENV] = "0"  # read by Airflow's configuration at each trigger's start

    # Import everything before saying ready, so imports are outside the measured window.
    import aiohttp
    import httpx

    import airflow_provider_opus
    from airflow_provider_opus.hooks.opus import OpusHook
    from airflow_provider_opus.triggers.opus import OpusJobTrigger

    package = os.path.dirname(airflow_provider_opus.__file__)

    # The trigger logs each status change, as in a triggerer; keep it, but off the terminal.
    logging.getLogger("airflow_provider_opus").setLevel(logging.INFO)
    if variant.startswith("trigger"):
        # A triggerer has read a connection and built its TLS context long before: keep those one-off costs
        # of a fresh process (Airflow's secrets backends, certifi's CAs: tens of ms) out of the
        # run. On a loop of its own, so the measured loop starts with nothing kept.
        from airflow_provider_opus.connection_cache import connection_settings_cache
        from airflow_provider_opus.transport import aiohttp_ssl

        aiohttp_ssl(asyncio.run(connection_settings_cache.get("opus_default")))
        connection_settings_cache.clear()  # the settings are kept per process: none kept at the start

    if gc_freeze or os.environ.get("OPUS_BENCH_GC_FREEZE") == "1":
        gc.collect()
        gc.freeze()
    idle_cpu_per_second = _idle_loop_cpu()
    out.write(json.dumps({"ready": True}) + "\n")
    job = json.loads(sys.stdin.readline())
    ids: list[str] = job["ids"]
    url: str = job["url"]
    rng = random.Random(job.get("seed", 1))
    offsets = [rng.uniform(0, arrival) for _ in ids]
    # Every waiter waits one interval before its first poll (as OpusJobTrigger does: the task has just
    # checked); after this, all have started, connected and polled once.
    warmup = arrival + poll_interval + 0.5
    headers = {"x-service-key": SERVICE_KEY, "Accept": "application/json"}
    events: dict[str, float] = {}
    outcomes: Counter[str] = Counter()
    lags: list[tuple[float, float]] = []  # (seconds since start, lag)
    lag_by_second: dict[int, float] = {}  # worst lag in each second of the run

    async def ticker(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        while not stop.is_set():
            expected = loop.time() + TICK
            await asyncio.sleep(TICK)
            lag = max(0.0, loop.time() - expected)
            lags.append((expected - begin, lag))
            second = int(expected - begin)
            lag_by_second[second] = max(lag, lag_by_second.get(second, 0.0))

    gc_pauses: list[tuple[int, float, float]] = []  # (generation, seconds, began after t0) of each collection
    gc_started: list[float] = [0.0]
    burst_t0: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            began = gc_started[0]
            gc_pauses.append((info["generation"], time.perf_counter() - began, began - burst_t0[0]))

    def done(job_id: str, outcome: str) -> None:
        events[job_id] = time.time()
        outcomes[outcome] += 1

    async def raw_aiohttp(job_id: str, offset: float, session: aiohttp.ClientSession | None) -> None:
        own = session is None
        if session is None:
            session = aiohttp.ClientSession(headers=headers)
        try:
            await asyncio.sleep(offset)
            while True:
                await asyncio.sleep(poll_interval)
                async with session.get(f"{url}/job/{job_id}/status") as response:
                    status = json.loads(await response.read())["status"]
                if status != IN_PROGRESS:
                    done(job_id, status)
                    return
        finally:
            if own:
                await session.close()

    async def raw_httpx(job_id: str, offset: float, client: httpx.AsyncClient) -> None:
        await asyncio.sleep(offset)
        while True:
            await asyncio.sleep(poll_interval)
            response = await client.get(f"{url}/job/{job_id}/status")
            status = json.loads(response.content)["status"]
            if status != IN_PROGRESS:
                done(job_id, status)
                return

    async def trigger(job_id: str, offset: float) -> None:
        await asyncio.sleep(offset)
        async for event in OpusJobTrigger(job_id, poll_interval=poll_interval).run():
            done(job_id, event.payload["status"])

    async def to_thread(job_id: str, offset: float) -> None:
        await asyncio.sleep(offset)
        hook = OpusHook()
        while True:
            await asyncio.sleep(poll_interval)
            status = await asyncio.to_thread(hook.get_job_status, job_id)
            if status != IN_PROGRESS:
                done(job_id, status)
                return

    async def main() -> dict[str, Any]:
        shared_aiohttp = aiohttp.ClientSession(headers=headers) if variant == "aiohttp_shared" else None
        shared_httpx = (
            httpx.AsyncClient(
                headers=headers,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
                # Waiting for a free connection is not an error here (by default it is, after 5 s).
                timeout=httpx.Timeout(30.0, pool=None),
            )
            if variant == "httpx_shared"
            else None
        )
        if gc_collect_first:
            gc.collect()  # the same collector state for every variant: no import garbage pending
        # The collector's state as the waiters arrive (outside the measured window).
        gc_at_start = {"count": gc.get_count(), "objects_by_generation": [len(gc.get_objects(g)) for g in range(3)]}
        stop = asyncio.Event()
        tick_task = asyncio.create_task(ticker(stop))
        gc.callbacks.append(on_gc)
        reset_ok = reset_peak_rss()
        rss_before = rss_mib()
        cpu0, t0, wall0 = time.process_time(), time.perf_counter(), time.time()
        # The steady window: every waiter has started and polled once, no job has finished yet.
        loop = asyncio.get_running_loop()
        samples: list[tuple[float, float]] = []  # (wall clock, process CPU)

        def sample() -> None:
            samples.append((time.time(), time.process_time()))

        if job["steady_until"] > wall0 + warmup:  # else there is no steady window (jobs too short)
            for at in (wall0 + warmup, job["steady_until"]):
                loop.call_at(loop.time() + at - wall0, sample)
        if variant in ("aiohttp_shared", "aiohttp_per_job"):
            coros = [raw_aiohttp(i, o, shared_aiohttp) for i, o in zip(ids, offsets, strict=True)]
        elif variant == "httpx_shared":
            assert shared_httpx is not None
            coros = [raw_httpx(i, o, shared_httpx) for i, o in zip(ids, offsets, strict=True)]
        elif variant in ("trigger", "trigger_uncached"):
            coros = [trigger(i, o) for i, o in zip(ids, offsets, strict=True)]
        elif variant == "to_thread":
            coros = [to_thread(i, o) for i, o in zip(ids, offsets, strict=True)]
        else:
            raise ValueError(variant)
        burst_t0[0] = time.perf_counter()
        tasks = [asyncio.create_task(coro) for coro in coros]
        finished, pending = await asyncio.wait(tasks, timeout=time_cap)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        errors = [repr(t.exception()) for t in finished if not t.cancelled() and t.exception() is not None]
        if shared_aiohttp is not None:
            await shared_aiohttp.close()
        if shared_httpx is not None:
            await shared_httpx.aclose()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        peak = peak_rss_mib()
        gc.callbacks.remove(on_gc)
        stop.set()
        await tick_task
        start_window = 0.8 * poll_interval  # as start_lag_max_ms: before any waiter can poll
        start_gc = Counter(gen for gen, _, began in gc_pauses if began < start_window)
        return {
            "package": package,
            # Net of what the idle loop and the ticker cost on their own, so small N is not dominated by them.
            "cpu_seconds": max(0.0, cpu - idle_cpu_per_second * wall),
            "cpu_seconds_raw": cpu,
            "idle_cpu_per_second": idle_cpu_per_second,
            "wall_seconds": wall,
            "started_at": wall0,
            "last_event_at": max(events.values()) if events else None,
            "events": events,
            "outcomes": dict(outcomes),
            "incomplete": len(pending),
            "errors": errors[:5],
            "error_count": len(errors),
            "rss_before_mib": rss_before,
            "rss_peak_mib": peak,
            "peak_reset": reset_ok,
            "lag_max_ms": max(lag for _, lag in lags) * 1000 if lags else None,
            "lag_p99_ms": percentile([lag for _, lag in lags], 99) * 1000,
            "lag_p50_ms": percentile([lag for _, lag in lags], 50) * 1000,
            # After every waiter has started and made its first poll: the steady state of polling.
            "steady_window": samples if len(samples) == 2 else None,
            "steady_lag_p99_ms": percentile([lag for at, lag in lags if at >= warmup], 99) * 1000,
            "steady_lag_max_ms": max((lag for at, lag in lags if at >= warmup), default=0.0) * 1000,
            # While the waiters start, before any can poll (a waiter's first poll is an interval after its start).
            "start_lag_max_ms": max((lag for at, lag in lags if at < 0.8 * poll_interval), default=0.0) * 1000,
            "ticks": len(lags),
            "gc_collections": dict(Counter(str(gen) for gen, _, _ in gc_pauses)),
            "gc_max_pause_ms": max((p for _, p, _ in gc_pauses), default=0.0) * 1000,
            "gc_gen2_pauses_ms": [round(p * 1000, 1) for gen, p, _ in gc_pauses if gen == 2],
            # Collections begun while the waiters start (the window of start_lag_max_ms), by generation.
            "gc_collect_first": gc_collect_first,
            "gc_at_start": gc_at_start,
            **{f"start_gc_gen{gen}": start_gc.get(gen, 0) for gen in range(3)},
            "start_gc_gen2_pauses_ms": [
                round(p * 1000, 1) for gen, p, began in gc_pauses if gen == 2 and began < start_window
            ],
            "lag_max_ms_by_second": [round(lag_by_second.get(i, 0.0) * 1000, 1) for i in range(int(wall) + 1)],
        }

    result = asyncio.run(main())
    out.write(json.dumps(result) + "\n")


# -- the orchestrator --------------------------------------------------------------------------------


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _readline(stream: Any, timeout: float) -> str | None:
    """One line from a pipe, or None if none came within ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else None


def _killed_result(pid: int, cpu_at_ready: float, started: float) -> dict[str, Any]:
    """What is known of a client that had to be killed: its CPU and wall time; no events, lag or RSS."""
    wall = time.time() - started
    return {
        "killed": True,
        "cpu_seconds": _process_cpu(pid) - cpu_at_ready,
        "cpu_seconds_raw": None,
        "idle_cpu_per_second": 0.0,
        "wall_seconds": wall,
        "started_at": started,
        "last_event_at": None,
        "events": {},
        "outcomes": {},
        "incomplete": None,
        "errors": ["killed: no answer within the time cap"],
        "error_count": None,
        "rss_before_mib": 0.0,
        "rss_peak_mib": 0.0,
        "peak_reset": False,
        "lag_max_ms": None,
        "lag_p99_ms": None,
        "lag_p50_ms": None,
        "steady_window": None,
        "steady_lag_p99_ms": None,
        "steady_lag_max_ms": None,
        "ticks": 0,
        "lag_max_ms_by_second": [],
        "gc_collections": {},
        "gc_max_pause_ms": None,
        "gc_gen2_pauses_ms": [],
        "start_gc_gen0": None,
        "start_gc_gen1": None,
        "start_gc_gen2": None,
        "start_gc_gen2_pauses_ms": [],
    }


def run_once(
    emulator: BenchEmulator,
    variant: str,
    n: int,
    poll_interval: float,
    duration: float,
    jitter: float,
    time_cap: float,
    seed: int,
    arrival: float | None = None,
    gc_freeze: bool = False,
    before: str | None = None,
    gc_collect_first: bool = False,
) -> dict[str, Any]:
    """One client process, one variant, N jobs; returns the client's and the emulator's figures."""
    emulator.call("reset")
    log_path = ROOT / "benchmarks" / "results" / f"triggerer-{variant}-{n}.log"
    package_root: list[str] = []
    if variant == BEFORE:
        if before is None:
            raise ValueError(f"the variant {BEFORE} needs --before")
        # This client (the same measuring code for both) with that commit's package first on sys.path.
        package_root = ["--package-root", str(source_tree(before))]
    with open(log_path, "w") as log:
        client = emulator.start_client(
            "benchmarks.triggerer_scale",
            [
                *("--client", "trigger" if variant == BEFORE else variant),
                *("--poll-interval", str(poll_interval), "--time-cap", str(time_cap)),
                *("--arrival", str(poll_interval if arrival is None else arrival)),
                *(["--gc-freeze"] if gc_freeze else []),
                *(["--gc-collect-first"] if gc_collect_first else []),
                *package_root,
            ],
            log,
        )
        assert client.stdin is not None and client.stdout is not None
        try:
            ready = client.stdout.readline()
            if not ready:
                raise RuntimeError(f"client {variant} died: see {log_path}")
            cpu_at_ready = _process_cpu(client.pid)
            stats_before = emulator.call("stats")
            created = emulator.call("create_jobs", n=n, duration=duration, jitter=jitter)
            steady_until = created["executed_at"] + duration - 0.2
            request = {"ids": created["ids"], "url": emulator.url, "seed": seed, "steady_until": steady_until}
            client.stdin.write(json.dumps(request) + "\n")
            client.stdin.flush()
            started = time.time()
            # A client whose loop is blocked cannot honour its own time cap: stop it from here.
            line = _readline(client.stdout, time_cap + 15)
            if line is None:
                line = json.dumps(_killed_result(client.pid, cpu_at_ready, started))
                client.kill()
            client.wait(30)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    if not line:
        raise RuntimeError(f"client {variant} gave no result: see {log_path}")
    os.unlink(log_path)
    result = json.loads(line)
    result.setdefault("killed", False)
    if package_root and not result["killed"] and not result["package"].startswith(package_root[1]):
        raise RuntimeError(f"{BEFORE} imported {result['package']}, not the package in {package_root[1]}")
    after = emulator.call("stats")
    jobs = {job["id"]: job for job in emulator.call("jobs")["jobs"]}
    polls = after["requests"].get("get_job_status", 0)
    window = result.pop("steady_window")
    steady_polls = steady_cpu = None
    if window:
        (w1, c1), (w2, c2) = window
        poll_times = [entry["time"] for entry in emulator.call("requests", endpoint="get_job_status")["requests"]]
        steady_polls = sum(1 for at in poll_times if w1 <= at < w2)
        steady_cpu = max(0.0, c2 - c1 - result["idle_cpu_per_second"] * (w2 - w1))
        # If the loop was still working off the arrival of the waiters, the window is not steady: drop it.
        if w2 <= w1 or steady_polls < 0.5 * n * (w2 - w1) / poll_interval:
            steady_polls = steady_cpu = None
    events = result.pop("events")
    delays = [events[job_id] - jobs[job_id]["finishes_at"] for job_id in events]
    last_finish = max(job["finishes_at"] for job in jobs.values())
    emulator_cpu = after["cpu_seconds"] - stats_before["cpu_seconds"]
    result.update(
        {
            "variant": variant,
            "n": n,
            "poll_interval": poll_interval,
            "polls": polls,
            "polls_per_job": polls / n,
            "cpu_ms_per_poll": result["cpu_seconds"] / polls * 1000 if polls else None,
            "steady_polls": steady_polls,
            "steady_cpu_seconds": steady_cpu,
            "steady_cpu_ms_per_poll": steady_cpu / steady_polls * 1000 if steady_polls and steady_cpu else None,
            "steady_window_valid": steady_polls is not None,
            "cpu_ms_per_waiter": result["cpu_seconds"] / n * 1000,
            "connections": after["connections_api"],
            "events_received": len(events),
            "last_event_after_last_finish_s": (result["last_event_at"] - last_finish)
            if result["last_event_at"]
            else None,
            "detection_delay_median_s": median(delays),
            "detection_delay_max_s": max(delays) if delays else None,
            "emulator_cpu_seconds": emulator_cpu,
            "emulator_busy_fraction": emulator_cpu / result["wall_seconds"],
            "rss_growth_mib": None if result["killed"] else result["rss_peak_mib"] - result["rss_before_mib"],
        }
    )
    return result


@dataclass(frozen=True)
class Scenario:
    """One scenario of the plan: N, poll interval, job length (``duration + U(0, jitter)``), rounds per variant."""

    n: int
    poll_interval: float
    duration: float
    jitter: float
    rounds: dict[str, int]
    #: seconds over which the waiters start (0: all at once); None: one poll interval
    arrival: float | None = None
    #: ``gc.freeze()`` in the client before the run: Airflow's heap is then left out of every collection
    gc_freeze: bool = False
    #: ``gc.collect()`` in the client just before the waiters start: every variant from the same collector state
    gc_collect_first: bool = False


#: The ``make bench`` plan. Rounds interleave the variants (every other round reversed), so the ratios to
#: the floor are taken within a round (same machine state), then the median across rounds. At 5,000 the
#: emulator (one core) caps the poll rate, so polls are 2.5 s apart and jobs longer, to give each waiter
#: several polls.
CORE = ("aiohttp_shared", "trigger", "trigger_uncached")
DEFAULT_PLAN: dict[str, Scenario] = {
    "100": Scenario(100, 1.0, 5.0, 4.0, dict.fromkeys(("aiohttp_shared", "httpx_shared", "trigger"), 1)),
    "1000": Scenario(
        1000, 1.0, 5.0, 4.0, {**dict.fromkeys(("httpx_shared", "to_thread"), 1), **dict.fromkeys(CORE[:2], 3)}
    ),
    # httpx and to_thread already fall behind at 1,000 (see the results); at 5,000 they would only burn
    # the time budget.
    "5000": Scenario(5000, 2.5, 10.0, 4.0, dict.fromkeys(CORE, 3)),
}
#: 1,000 triggers arriving at once (a scheduler that defers a big mapped task, or a triggerer taking over
#: another's triggers): how long the loop stalls while they start, before any polls.
BURST = "1000-burst"
BURST_SCENARIO = Scenario(1000, 1.0, 5.0, 4.0, dict.fromkeys(CORE, 3), arrival=0.0)
#: The same burst after a full collection in the client: the starts' own stall, whatever the fresh process's
#: imports left for its first full collection (a triggerer imported long before a burst reaches it).
BURST_COLLECTED = "1000-burst-collected"
BURST_COLLECTED_SCENARIO = dataclasses.replace(BURST_SCENARIO, gc_collect_first=True)
#: Keep-alive at long intervals: aiohttp closes a pooled connection after 15 s idle (the emulator after 5 s),
#: so a trigger with a session of its own that polls less often reconnects every time; a shared pool
#: reconnects once per wave of polls. 200 triggers arriving within 1 s, polls 16 s apart, jobs of 17-19 s:
#: two polls each; the raw-aiohttp floor alongside.
KEEPALIVE_N = 200
KEEPALIVE = Scenario(KEEPALIVE_N, 16.0, 17.0, 2.0, {"aiohttp_shared": 1, "trigger": 1}, arrival=1.0)
#: 5,000 again with the client's heap frozen before the run (``gc.freeze()``, as Airflow's dag processor and
#: Celery workers do; its triggerer does not): what garbage collection over Airflow's heap adds to each variant.
GC_FROZEN = "5000-gc-frozen"
GC_FROZEN_SCENARIO = dataclasses.replace(DEFAULT_PLAN["5000"], rounds=dict.fromkeys(CORE[:2], 3), gc_freeze=True)
FULL_PLAN: dict[str, Scenario] = {
    **DEFAULT_PLAN,
    GC_FROZEN: GC_FROZEN_SCENARIO,
    BURST: BURST_SCENARIO,
    BURST_COLLECTED: BURST_COLLECTED_SCENARIO,
    str(KEEPALIVE_N): KEEPALIVE,
}


def run(plan: dict[str, Scenario], before: str | None = None) -> dict[str, Any]:
    """Run the plan against one emulator process; each run is a fresh client process (``before``: see ``--before``)."""
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    with BenchEmulator() as emulator:
        for name, scenario in plan.items():
            n, interval, duration, jitter, rounds = (
                scenario.n,
                scenario.poll_interval,
                scenario.duration,
                scenario.jitter,
                scenario.rounds,
            )
            time_cap = duration + jitter + 3 * interval + 12
            for repeat in range(max(rounds.values())):
                # Every other round in reverse order: no variant always runs first (trigger vs trigger_before).
                order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
                for variant in (v for v in order if rounds.get(v, 0) > repeat):
                    result = run_once(
                        emulator,
                        *(variant, n, interval, duration, jitter, time_cap, repeat + 1),
                        *(scenario.arrival, scenario.gc_freeze, before, scenario.gc_collect_first),
                    )
                    result.update(
                        scenario=name,
                        gc_frozen=scenario.gc_freeze,
                        repeat=repeat,
                        job_duration=duration,
                        job_duration_jitter=jitter,
                        arrival_window=interval if scenario.arrival is None else scenario.arrival,
                    )
                    runs.append(result)
                    nums = {k: math.nan if v is None else v for k, v in result.items()}
                    print(
                        f"  {name:>10s} {variant:18s} cpu/poll steady {nums['steady_cpu_ms_per_poll']:6.3f}"
                        f" all {nums['cpu_ms_per_poll']:6.3f} ms  polls {result['polls']:6d}"
                        f"  conns {result['connections']:5d}  lag p99 {nums['steady_lag_p99_ms']:7.1f}"
                        f" (all {nums['lag_p99_ms']:7.1f}) ms  wall {result['wall_seconds']:5.1f} s"
                        f"  rss +{nums['rss_growth_mib']:.0f} MiB  start stall {nums['start_lag_max_ms']:.0f} ms"
                        f" (collections {nums['start_gc_gen0']}/{nums['start_gc_gen1']}/{nums['start_gc_gen2']}"
                        " of gen 0/1/2)"
                        f"  events {result['events_received']}/{n}"
                        + ("  KILLED at the time cap" if result["killed"] else ""),
                        flush=True,
                    )
    return {
        "params": {
            "plan": {name: dataclasses.asdict(scenario) for name, scenario in plan.items()},
            "tick_seconds": TICK,
            **({"before": before} if before else {}),
        },
        "runs": runs,
        "summary": summarize(runs),
        "elapsed_seconds": time.perf_counter() - started,
    }


SUMMARY_FIELDS = (
    "steady_cpu_ms_per_poll",
    "cpu_ms_per_poll",
    "cpu_ms_per_waiter",
    "polls",
    "polls_per_job",
    "connections",
    "wall_seconds",
    "last_event_after_last_finish_s",
    "detection_delay_median_s",
    "steady_lag_p99_ms",
    "steady_lag_max_ms",
    "lag_p99_ms",
    "lag_max_ms",
    "start_lag_max_ms",
    "start_gc_gen0",
    "start_gc_gen1",
    "start_gc_gen2",
    "gc_max_pause_ms",
    "rss_growth_mib",
    "emulator_busy_fraction",
    "events_received",
    "incomplete",
    "error_count",
)


#: Figures also given as a ratio to the floor's in the same round (then the median over rounds).
RATIO_FIELDS = ("steady_cpu_ms_per_poll", "cpu_ms_per_poll", "lag_p99_ms", "steady_lag_p99_ms", "start_lag_max_ms")


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per scenario and variant: the median of each figure over rounds, and ratios to the floor in the same round."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    names = dict.fromkeys(run.get("scenario", str(run["n"])) for run in runs)
    for name in sorted(names, key=lambda key: (int(key.split("-")[0]), key)):
        in_scenario = [run for run in runs if run.get("scenario", str(run["n"])) == name]
        floors = {run["repeat"]: run for run in in_scenario if run["variant"] == "aiohttp_shared"}
        summary[name] = {}
        for variant in VARIANTS:
            mine = [run for run in in_scenario if run["variant"] == variant]
            if not mine:
                continue
            row: dict[str, Any] = {
                "n": mine[0]["n"],
                "gc_frozen": mine[0].get("gc_frozen", False),
                "gc_collect_first": mine[0].get("gc_collect_first", False),
                "rounds": len(mine),
                "arrival_window": mine[0].get("arrival_window"),
                "poll_interval": mine[0]["poll_interval"],
                "job_duration": mine[0]["job_duration"],
                "job_duration_jitter": mine[0]["job_duration_jitter"],
            }
            for field in SUMMARY_FIELDS:
                values = [run[field] for run in mine if run.get(field) is not None]
                row[field] = median(values) if values else None
            for field in RATIO_FIELDS:
                ratios = [
                    run[field] / floors[run["repeat"]][field]
                    for run in mine
                    if run["repeat"] in floors and run.get(field) and floors[run["repeat"]].get(field)
                ]
                row[f"{field}_vs_floor"] = median(ratios) if ratios else None
            row["gc_gen2_collections"] = median(run["gc_collections"].get("2", 0) for run in mine if not run["killed"])
            row["killed_runs"] = sum(1 for run in mine if run["killed"])
            summary[name][variant] = row
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--time-cap", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--gc-freeze", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gc-collect-first", action="store_true", help=argparse.SUPPRESS)
    # trigger_before's client: this client with another commit's package first on sys.path (see --before).
    parser.add_argument("--package-root", help=argparse.SUPPRESS)
    parser.add_argument(
        "--arrival", type=float, help="seconds over which the waiters start; 0: all at once (default: one interval)"
    )
    parser.add_argument(
        "--scenarios",
        "--n",
        nargs="+",
        help=f"scenarios: sizes or names ({', '.join(FULL_PLAN)}; default: all of them, the make bench plan)",
    )
    parser.add_argument("--variants", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--poll-interval", type=float, help="seconds (default: 1 s up to N=1000, 2.5 s above)")
    parser.add_argument("--repeats", type=int, help="rounds per variant (default: the plan's)")
    parser.add_argument("--duration", type=float, help="job duration in seconds (default: the plan's)")
    parser.add_argument("--jitter", type=float, help="extra U(0, jitter) seconds per job (default: the plan's)")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/triggerer_scale.json")
    parser.add_argument(
        "--before",
        metavar="REF",
        help=f"also run {BEFORE}: the trigger of commit REF (e.g. the one before a change), in the same rounds "
        "as trigger, in every scenario that runs trigger",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --save: replace only these scenarios' runs in the saved results, keep the others",
    )
    args = parser.parse_args(argv)
    if args.client:
        arrival = args.poll_interval if args.arrival is None else args.arrival
        if args.package_root:
            sys.path.insert(0, args.package_root)
        _client_main(args.client, args.poll_interval, args.time_cap, arrival, args.gc_freeze, args.gc_collect_first)
        return 0
    plan = {name: _scenario(name, args) for name in args.scenarios} if args.scenarios else dict(FULL_PLAN)
    if args.before:
        plan = {
            name: dataclasses.replace(scenario, rounds={**scenario.rounds, BEFORE: scenario.rounds["trigger"]})
            if "trigger" in scenario.rounds
            else scenario
            for name, scenario in plan.items()
        }
    result = run(plan, args.before)
    if args.save:
        saved = load_result("triggerer_scale") if args.merge else None
        if saved:
            kept = [r for r in saved["runs"] if r.get("scenario", str(r["n"])) not in plan]
            result["runs"] = kept + result["runs"]
            result["summary"] = summarize(result["runs"])
            result["params"]["plan"] = {**saved["params"]["plan"], **result["params"]["plan"]}
        save_result("triggerer_scale", result)
    return 0


def _scenario(name: str, args: argparse.Namespace) -> Scenario:
    """The named scenario of the plan (or the plan's nearest size for another N), with the command line's changes."""
    if name in FULL_PLAN:
        base = FULL_PLAN[name]
    elif name.isdigit():
        n = int(name)
        base = dataclasses.replace(DEFAULT_PLAN["1000" if n <= 1000 else "5000"], n=n)
    else:
        raise SystemExit(f"--scenarios: {name!r} is neither a size nor one of {', '.join(FULL_PLAN)}")
    rounds = base.rounds
    if args.variants:
        rounds = {v: rounds.get(v, 1) for v in args.variants.split(",")}
    if args.repeats:
        rounds = dict.fromkeys(rounds, args.repeats)
    return dataclasses.replace(
        base,
        poll_interval=args.poll_interval or base.poll_interval,
        duration=base.duration if args.duration is None else args.duration,
        jitter=base.jitter if args.jitter is None else args.jitter,
        rounds=rounds,
        arrival=base.arrival if args.arrival is None else args.arrival,
    )


if __name__ == "__main__":
    sys.exit(main())
