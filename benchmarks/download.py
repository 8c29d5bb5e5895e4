"""
Download: ``OpusHook.download_file`` of an output file from the emulator, against ``curl`` in the same run.

For each size (10 MiB, 100 MiB, 1 GiB) and round: ``curl -o FILE`` of the output file's URL, then
``OpusHook.download_file`` to a file in a fresh process that reports its wall time, CPU and peak RSS
growth (VmHWM reset just before the download). The memory claim is that the growth stays flat: the
1 GiB download's growth is compared with the 10 MiB one's. The throughput ratio hook/curl is taken per
round, then the median. The emulator generates each file as it sends it (nothing is held in memory
or on disk on its side); the downloaded files go to a temporary directory, deleted afterwards.

Reproduce::

    .venv/bin/python -m benchmarks.download
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    FILE_SIZES,
    MIB,
    PYTHON,
    ROOT,
    SERVICE_KEY,
    bench_env,
    median,
    open_hook_sessions,
    peak_rss_mib,
    private_stdout,
    reset_peak_rss,
    rss_mib,
    save_result,
)


def _workflows() -> list[dict[str, Any]]:
    """One input-less workflow per size, whose jobs end at once with one output file of that size."""
    return [
        {
            "workflowId": f"bench-download-{size}",
            "name": f"Download benchmark {label}",
            "jobPayloadSchema": {},
            "emulator": {"duration_seconds": 0, "output_files": 1, "output_file_bytes": size},
        }
        for label, size in FILE_SIZES.items()
    ]


def _client(url: str, destination: str) -> None:
    """Client process: download through OpusHook, report time, CPU and peak RSS growth."""
    out = private_stdout()
    from airflow_provider_opus.hooks.opus import OpusHook

    hook = OpusHook()
    # The transfer is timed: read the connection and open the storage session on the hook's private loop first
    # (OpusHook opens it at its first call on that loop; no request is sent here).
    open_hook_sessions(hook, api=False)
    reset_ok = reset_peak_rss()
    rss_before = rss_mib()
    cpu0, t0 = time.process_time(), time.perf_counter()
    hook.download_file(url, destination)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    result = {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "rss_before_mib": rss_before,
        "rss_peak_mib": peak_rss_mib(),
        "peak_reset": reset_ok,
    }
    out.write(json.dumps(result) + "\n")


def _hook_download(connection: str, url: str, destination: Path) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-m", "benchmarks.download", "--client", url, str(destination)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=bench_env(AIRFLOW_CONN_OPUS_DEFAULT=connection),
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"hook download failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _curl_download(url: str, destination: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    result = subprocess.run(
        ["curl", "-sS", "-o", str(destination), "-w", "%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    wall = time.perf_counter() - t0
    if result.stdout.strip() != "200":
        raise RuntimeError(f"curl download answered {result.stdout!r}: {result.stderr}")
    return {"wall_seconds": wall}


def _output_file_url(hook: Any, workflow_id: str) -> str:
    job_id = hook.initiate_job(workflow_id, "download benchmark", "one output file")
    hook.execute_job(job_id, {})
    if hook.wait_for_job(job_id, poll_interval=0.1, timeout=60) != "COMPLETED":
        raise RuntimeError(f"benchmark job {job_id} did not complete")
    (url,) = hook.get_job_results(job_id)["results"]["outputFiles"]
    return str(url)


def run(rounds: dict[str, int]) -> dict[str, Any]:
    """Measure each size ``rounds[label]`` times (default once) and return the results."""
    if shutil.which("curl") is None:
        raise RuntimeError("curl is not installed: this benchmark's baseline needs it")
    from airflow_provider_opus.emulator import OpusEmulator
    from airflow_provider_opus.hooks.opus import OpusHook

    tmp = Path(tempfile.mkdtemp(prefix="opus-bench-download-"))
    results: dict[str, Any] = {"sizes": {}, "curl_flags": "-o FILE"}
    try:
        with OpusEmulator(service_key=SERVICE_KEY, workflows=_workflows(), api="legacy") as emulator:
            connection = json.dumps({"conn_type": "opus", "host": emulator.url, "password": SERVICE_KEY})
            os.environ["AIRFLOW_CONN_OPUS_DEFAULT"] = connection
            hook = OpusHook()
            for label, size in FILE_SIZES.items():
                url = _output_file_url(hook, f"bench-download-{size}")
                per_round = []
                for _ in range(rounds.get(label, 1)):
                    curl = _curl_download(url, tmp / "curl.pdf")
                    mine = _hook_download(connection, url, tmp / "hook.pdf")
                    sizes = [(tmp / name).stat().st_size for name in ("curl.pdf", "hook.pdf")]
                    if (
                        sizes != [size, size]
                        or (tmp / "curl.pdf").read_bytes()[:64] != (tmp / "hook.pdf").read_bytes()[:64]
                    ):
                        raise RuntimeError(f"downloads of {label} differ: {sizes}")
                    per_round.append(
                        {
                            "curl_wall_seconds": curl["wall_seconds"],
                            "hook": mine,
                            "rss_growth_mib": mine["rss_peak_mib"] - mine["rss_before_mib"],
                            "throughput_ratio": curl["wall_seconds"] / mine["wall_seconds"],
                        }
                    )
                results["sizes"][label] = {
                    "bytes": size,
                    "rounds": per_round,
                    "median_throughput_ratio": median(r["throughput_ratio"] for r in per_round),
                    "median_hook_mib_per_second": median(size / MIB / r["hook"]["wall_seconds"] for r in per_round),
                    "median_curl_mib_per_second": median(size / MIB / r["curl_wall_seconds"] for r in per_round),
                    "max_rss_growth_mib": max(r["rss_growth_mib"] for r in per_round),
                }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    small, large = results["sizes"]["10 MiB"], results["sizes"]["1 GiB"]
    results["rss_growth_1gib_minus_10mib_mib"] = large["max_rss_growth_mib"] - small["max_rss_growth_mib"]
    return results


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", nargs=2, metavar=("URL", "DESTINATION"), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size below 1 GiB (1 GiB: 1 round)")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/download.json")
    args = parser.parse_args(argv)
    if args.client:
        _client(*args.client)
        return
    results = run({"10 MiB": args.rounds, "100 MiB": args.rounds, "1 GiB": 1})
    path = save_result("download", results) if args.save else "not saved (--save)"
    for label, size in results["sizes"].items():
        hook_speed, curl_speed = size["median_hook_mib_per_second"], size["median_curl_mib_per_second"]
        print(
            f"{label}: hook {hook_speed:.0f} MiB/s, curl {curl_speed:.0f} MiB/s "
            f"({size['median_throughput_ratio']:.2f}x curl), peak RSS growth {size['max_rss_growth_mib']:.1f} MiB"
        )
    print(f"RSS growth 1 GiB minus 10 MiB: {results['rss_growth_1gib_minus_10mib_mib']:.1f} MiB; saved {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
