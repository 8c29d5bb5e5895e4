"""
Where a status poll's client CPU goes: the raw aiohttp request against the hook's layers, one at a time.

One connection, sequential requests to the emulator (in its own process), client CPU per call
(``time.process_time``), median of several rounds. Attribution for the triggerer-scale figures.

Reproduce::

    .venv/bin/python -m benchmarks.poll_breakdown
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.common import SERVICE_KEY, BenchEmulator, median, quiet_stdout, save_result, setup_airflow_env


def measure(emulator: BenchEmulator, calls: int, rounds: int) -> dict[str, Any]:
    setup_airflow_env()
    os.environ["AIRFLOW_CONN_OPUS_DEFAULT"] = emulator.connection_json()
    import aiohttp
    from airflow.sdk import BaseHook
    from tenacity import AsyncRetrying

    from airflow_provider_opus.api import GET_JOB_STATUS, status_from
    from airflow_provider_opus.connection_cache import connection_settings_cache
    from airflow_provider_opus.hooks.opus import OpusAsyncHook
    from airflow_provider_opus.retry import RetryPolicy
    from airflow_provider_opus.triggers.opus import OpusJobTrigger

    emulator.call("reset")
    job_id = emulator.call("create_jobs", n=1, duration=3600, jitter=0)["ids"][0]
    url = f"{emulator.url}/job/{job_id}/status"
    policy = RetryPolicy()

    async def main() -> dict[str, list[float]]:
        session = aiohttp.ClientSession(headers={"x-service-key": SERVICE_KEY})
        hook = OpusAsyncHook()
        path = GET_JOB_STATUS.path(job_execution_id=job_id)

        async def raw() -> None:
            async with session.get(url) as response:
                json.loads(await response.read())["status"]

        async def hook_full() -> None:
            await hook.get_job_status(job_id)

        async def hook_no_retry() -> None:
            await hook._send_once(GET_JOB_STATUS, GET_JOB_STATUS.path(job_execution_id=job_id))

        async def noop() -> None:
            return None

        async def tenacity_only() -> None:
            # What every poll would cost on top if the first attempt ran inside tenacity.
            kwargs = policy.tenacity_kwargs(GET_JOB_STATUS, f"GET {path}")
            async for attempt in AsyncRetrying(**kwargs):
                with attempt:
                    await noop()
                    return

        async def path_and_parse() -> None:
            p = GET_JOB_STATUS.path(job_execution_id=job_id)
            status_from({"status": "IN PROGRESS"}, GET_JOB_STATUS.path(job_execution_id=job_id))
            del p

        async def new_session_first_poll() -> None:
            headers = {"x-service-key": SERVICE_KEY}
            async with aiohttp.ClientSession(headers=headers) as fresh, fresh.get(url) as response:
                json.loads(await response.read())["status"]

        async def new_hook_first_poll() -> None:
            async with OpusAsyncHook() as fresh_hook:
                await fresh_hook.get_job_status(job_id)

        async def new_hook_first_poll_cache_cleared() -> None:
            connection_settings_cache.clear()  # as every trigger did before the cache
            async with OpusAsyncHook() as fresh_hook:
                await fresh_hook.get_job_status(job_id)

        async def aget_connection_only() -> None:
            await BaseHook.aget_connection("opus_default")

        async def cached_settings_only() -> None:
            await connection_settings_cache.get("opus_default")

        trigger = OpusJobTrigger(job_id)

        async def trigger_log_line() -> None:
            trigger.log.info("Opus job %s is %s (after %.0f s)", job_id, "IN PROGRESS", 0.0)

        cases: dict[str, Callable[[], Awaitable[None]]] = {
            "raw_aiohttp": raw,
            "hook_get_job_status": hook_full,
            "hook_send_once_no_retry": hook_no_retry,
            "tenacity_wrapper_only": tenacity_only,
            "endpoint_path_x2": path_and_parse,
            "new_session_first_poll": new_session_first_poll,
            "new_hook_first_poll": new_hook_first_poll,
            "new_hook_first_poll_cache_cleared": new_hook_first_poll_cache_cleared,
            "aget_connection_only": aget_connection_only,
            "cached_settings_only": cached_settings_only,
            "trigger_log_line": trigger_log_line,
        }
        for case in cases.values():  # warm up: connections, settings, caches
            for _ in range(50):
                await case()
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, case in cases.items():
                cpu0 = time.process_time()
                for _ in range(calls):
                    await case()
                samples[name].append((time.process_time() - cpu0) / calls * 1e6)
        await session.close()
        await hook.close()
        return samples

    samples = asyncio.run(main())
    variants = ("aiohttp_shared", "trigger")
    retained = {variant: retained_per_waiter(emulator, variant) for variant in variants}
    return {
        "retained_per_waiter": retained,
        "calls_per_round": calls,
        "rounds": rounds,
        "us_per_call_median": {name: median(values) for name, values in samples.items()},
        "us_per_call_samples": samples,
    }


def retained_per_waiter(emulator: BenchEmulator, variant: str, n: int = 500) -> dict[str, float]:
    """
    GC-tracked objects and RSS each waiting job adds while it sleeps between polls.

    Every gen-2 collection walks all tracked objects, so this sets how long the triggerer's
    full collections pause the event loop.
    """
    import gc

    import aiohttp

    from airflow_provider_opus.triggers.opus import OpusJobTrigger
    from benchmarks.common import rss_mib

    emulator.call("reset")
    ids = emulator.call("create_jobs", n=n, duration=3600, jitter=0)["ids"]

    async def main() -> dict[str, float]:
        polled = 0
        all_polled = asyncio.Event()
        session = aiohttp.ClientSession(headers={"x-service-key": SERVICE_KEY}) if variant == "aiohttp_shared" else None

        def one_more() -> None:
            nonlocal polled
            polled += 1
            if polled == n:
                all_polled.set()

        async def raw(job_id: str) -> None:
            assert session is not None
            async with session.get(f"{emulator.url}/job/{job_id}/status") as response:
                json.loads(await response.read())
            one_more()
            await asyncio.sleep(3600)

        async def trigger(job_id: str) -> None:
            # The trigger waits one interval before its first poll; measured before its second one.
            async for _ in OpusJobTrigger(job_id, poll_interval=2.0).run():
                pass

        gc.collect()
        objects0, rss0 = len(gc.get_objects()), rss_mib()
        if variant == "aiohttp_shared":
            tasks = [asyncio.create_task(raw(job_id)) for job_id in ids]
            await all_polled.wait()
        else:
            tasks = [asyncio.create_task(trigger(job_id)) for job_id in ids]
            deadline = time.monotonic() + 30
            while emulator.call("stats")["requests"].get("get_job_status", 0) < n:
                if time.monotonic() > deadline:
                    seen = emulator.call("stats")["requests"]
                    failed = [repr(t.exception()) for t in tasks if t.done() and not t.cancelled() and t.exception()]
                    raise RuntimeError(f"{variant}: not every trigger polled within 30 s: {seen}, {failed[:3]}")
                await asyncio.sleep(0.1)
        gc.collect()
        objects1, rss1 = len(gc.get_objects()), rss_mib()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if session is not None:
            await session.close()
        return {"objects": (objects1 - objects0) / n, "rss_kib": (rss1 - rss0) * 1024 / n}

    return asyncio.run(main())


def run(calls: int = 500, rounds: int = 3) -> dict[str, Any]:
    with BenchEmulator() as emulator, quiet_stdout():
        return measure(emulator, calls, rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/poll_breakdown.json")
    args = parser.parse_args(argv)
    result = run(args.calls, args.rounds)
    for name, value in result["us_per_call_median"].items():
        print(f"{name:28s} {value:8.1f} us/call")
    for name, value in result["retained_per_waiter"].items():
        print(f"{name:28s} {value['objects']:8.0f} objects, {value['rss_kib']:.1f} KiB per waiting job")
    if args.save:
        save_result("poll_breakdown", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
