"""
Upload: ``OpusHook.upload_file`` to the emulator's storage listener, against ``curl -T`` in the same run.

For each size (10 MiB, 100 MiB, 1 GiB) and round: ``curl -T`` (with ``Expect:`` disabled, as
aiohttp sends none) to a fresh presigned URL, then ``OpusHook.upload_file`` in a fresh process that
reports its wall time, CPU and peak RSS growth (VmHWM reset just before the upload). The throughput
ratio hook/curl is taken per round, then the median. Then many small files: through one hook in a loop,
and as a dynamically mapped ``OpusUploadOperator`` (``partial().expand(files=...)``) run by ``dag.test()``,
where every mapped task builds its own hook. OpusHook's sessions belong to its thread's private event loop,
so mapped tasks run one after another in ``dag.test()``'s one thread would share them; each mapped task's
``execute`` therefore runs in a short-lived thread of its own (``benchmarks.common.run_as_task``), whose loop
and sessions close when it ends, so that each opens its own connections, as each task does on a worker in
a process of its own. Files are written to a temporary directory and deleted afterwards.

Reproduce::

    .venv/bin/python -m benchmarks.upload
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
    BenchEmulator,
    bench_env,
    median,
    open_hook_sessions,
    peak_rss_mib,
    private_stdout,
    reset_peak_rss,
    rss_mib,
    save_result,
)


def _write_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        for offset in range(0, size, MIB):
            out.write(block[: min(MIB, size - offset)])


def _hook_client(mode: str, paths: list[str]) -> None:
    """Client process: upload through OpusHook, report time, CPU and peak RSS growth."""
    out = private_stdout()
    from airflow_provider_opus.hooks.opus import OpusHook

    hook = OpusHook()
    # The transfer is timed: read the connection and open both aiohttp sessions on the hook's private loop
    # first (OpusHook opens them at its first call; no request is sent here, so the counts are unchanged).
    open_hook_sessions(hook)
    if mode == "small":
        hook.upload_file(paths[0])  # warm up: connections, sessions
        paths = paths[1:]
    reset_ok = reset_peak_rss()
    rss_before = rss_mib()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for path in paths:
        hook.upload_file(path)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    out.write(
        json.dumps(
            {
                "wall_seconds": wall,
                "cpu_seconds": cpu,
                "files": len(paths),
                "rss_before_mib": rss_before,
                "rss_peak_mib": peak_rss_mib(),
                "peak_reset": reset_ok,
            }
        )
        + "\n"
    )


MAPPED_DAG_ID = "opus_bench_mapped_upload"
MAPPED_DAG = f"""
import json
import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_opus.operators.opus import OpusUploadOperator
from benchmarks.common import run_as_task


class ThreadedUploadOperator(OpusUploadOperator):
    # dag.test() runs the mapped tasks one after another in one thread, where their hooks would share that
    # thread's private loop and sessions; on a worker each task has a process, and so connections, of its
    # own. A short-lived thread per task (its loop and sessions closed when it ends) models that.
    def execute(self, context):
        return run_as_task(super().execute, context)


with DAG("{MAPPED_DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    ThreadedUploadOperator.partial(task_id="upload").expand(files=json.loads(os.environ["OPUS_BENCH_FILES"]))
"""


def _mapped_client(dags_folder: str) -> None:
    """Client process: ``dag.test()`` of a DAG that maps OpusUploadOperator over the files; reports time and CPU."""
    out = private_stdout()
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=dags_folder).dags[MAPPED_DAG_ID]
    cpu0, t0 = time.process_time(), time.perf_counter()
    run = dag.test()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    states = [ti.state for ti in run.get_task_instances()]
    out.write(json.dumps({"state": str(run.state), "wall_seconds": wall, "cpu_seconds": cpu, "tasks": len(states)}))
    out.write("\n")


def _mapped_upload(emulator: BenchEmulator, tmp: Path, paths: list[str]) -> dict[str, Any]:
    dags = tmp / "dags"
    dags.mkdir()
    (dags / "mapped_upload.py").write_text(MAPPED_DAG)
    env = bench_env(
        AIRFLOW_CONN_OPUS_DEFAULT=emulator.connection_json(),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        OPUS_BENCH_FILES=json.dumps(paths),
    )
    migrate = subprocess.run(
        [PYTHON, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed: {migrate.stderr[-2000:]}")
    done = subprocess.run(
        [PYTHON, "-m", "benchmarks.upload", "--client", "mapped", str(dags)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mapped upload failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    if result["state"] != "success" or result["tasks"] != len(paths):
        raise RuntimeError(f"mapped upload run ended {result}")
    return result


def _hook_connection(emulator: BenchEmulator) -> str:
    """
    The emulator's connection with ``max_upload_bytes`` at the largest size measured.

    The hook refuses a file over ``max_upload_bytes`` (by default 10 MiB, what Opus takes) before any call;
    this benchmark measures the transfer, so its 100 MiB and 1 GiB files must pass that check.
    """
    connection = json.loads(emulator.connection_json())
    connection["extra"]["max_upload_bytes"] = max(FILE_SIZES.values())
    return json.dumps(connection)


def _hook_upload(emulator: BenchEmulator, mode: str, paths: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-m", "benchmarks.upload", "--client", mode, *paths],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=bench_env(AIRFLOW_CONN_OPUS_DEFAULT=_hook_connection(emulator)),
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"hook upload failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _curl_upload(emulator: BenchEmulator, path: Path) -> dict[str, Any]:
    url = emulator.call("presign", extension="pdf")["presignedUrl"]
    t0 = time.perf_counter()
    result = subprocess.run(
        [
            *("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(path)),
            *("-H", "Content-Type: application/pdf", "-H", "Expect:", url),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    wall = time.perf_counter() - t0
    if result.stdout.strip() != "200":
        raise RuntimeError(f"curl upload answered {result.stdout!r}: {result.stderr}")
    return {"wall_seconds": wall}


def run(
    rounds: dict[str, int], small_files: int = 200, small_size: int = 10 * 1024, mapped_files: int = 50
) -> dict[str, Any]:
    if shutil.which("curl") is None:
        raise RuntimeError("curl is not installed: this benchmark's baseline needs it")
    tmp = Path(tempfile.mkdtemp(prefix="opus-bench-upload-"))
    results: dict[str, Any] = {"sizes": {}, "curl_flags": "-T FILE -H 'Content-Type: application/pdf' -H 'Expect:'"}
    try:
        with BenchEmulator() as emulator:
            for label, size in FILE_SIZES.items():
                path = tmp / f"upload-{size}.pdf"
                _write_file(path, size)
                per_round = []
                for _ in range(rounds.get(label, 1)):
                    emulator.call("reset")
                    before = emulator.call("stats")
                    curl = _curl_upload(emulator, path)
                    mid = emulator.call("stats")
                    hook = _hook_upload(emulator, "big", [str(path)])
                    after = emulator.call("stats")
                    uploads = emulator.call("uploads")["uploads"]
                    sizes_seen = sorted(u["size"] for u in uploads if u["uploaded"])
                    if sizes_seen != [size, size]:
                        raise RuntimeError(f"emulator recorded {sizes_seen}, expected two uploads of {size}")
                    per_round.append(
                        {
                            "curl_mib_s": size / MIB / curl["wall_seconds"],
                            "hook_mib_s": size / MIB / hook["wall_seconds"],
                            "ratio": curl["wall_seconds"] / hook["wall_seconds"],
                            "hook_cpu_seconds": hook["cpu_seconds"],
                            "hook_rss_growth_mib": hook["rss_peak_mib"] - hook["rss_before_mib"],
                            "hook_rss_before_mib": hook["rss_before_mib"],
                            "peak_reset": hook["peak_reset"],
                            "emulator_busy_curl": (mid["cpu_seconds"] - before["cpu_seconds"]) / curl["wall_seconds"],
                            "emulator_busy_hook": (after["cpu_seconds"] - mid["cpu_seconds"]) / hook["wall_seconds"],
                            "had_service_key": any(u["had_service_key"] for u in uploads),
                        }
                    )
                path.unlink()
                results["sizes"][label] = {
                    "bytes": size,
                    "rounds": per_round,
                    "curl_mib_s_median": median(r["curl_mib_s"] for r in per_round),
                    "hook_mib_s_median": median(r["hook_mib_s"] for r in per_round),
                    "ratio_median": median(r["ratio"] for r in per_round),
                    "hook_rss_growth_mib_max": max(r["hook_rss_growth_mib"] for r in per_round),
                    "hook_cpu_seconds_median": median(r["hook_cpu_seconds"] for r in per_round),
                }
                print(f"  {label:8s} {json.dumps({k: v for k, v in results['sizes'][label].items() if k != 'rounds'})}")

            small_dir = tmp / "small"
            small_dir.mkdir()
            paths = []
            for index in range(small_files + 1):  # +1: the warm-up upload
                path = small_dir / f"doc-{index:04d}.pdf"
                path.write_bytes(os.urandom(small_size))
                paths.append(str(path))
            emulator.call("reset")
            small = _hook_upload(emulator, "small", paths)
            stats = emulator.call("stats")
            results["small_files"] = {
                "files": small["files"],
                "bytes_each": small_size,
                "files_per_second": small["files"] / small["wall_seconds"],
                "cpu_ms_per_file": small["cpu_seconds"] / small["files"] * 1000,
                "requests": stats["requests"],
                "connections_api": stats["connections_api"],
                "connections_storage": stats["connections_storage"],
            }
            print(f"  small files {json.dumps(results['small_files'])}")

            mapped_paths = paths[1 : mapped_files + 1]
            emulator.call("reset")
            mapped = _mapped_upload(emulator, tmp, mapped_paths)
            stats = emulator.call("stats")
            results["mapped_files"] = {
                "files": len(mapped_paths),
                "bytes_each": small_size,
                "files_per_second": len(mapped_paths) / mapped["wall_seconds"],
                "wall_ms_per_file": mapped["wall_seconds"] / len(mapped_paths) * 1000,
                "cpu_ms_per_file": mapped["cpu_seconds"] / len(mapped_paths) * 1000,
                "requests": stats["requests"],
                "connections_api": stats["connections_api"],
                "connections_storage": stats["connections_storage"],
            }
            print(f"  mapped files {json.dumps(results['mapped_files'])}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", choices=["big", "small", "mapped"], help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=4, help="rounds for 10 and 100 MiB")
    parser.add_argument("--rounds-1gib", type=int, default=2)
    parser.add_argument("--small-files", type=int, default=200)
    parser.add_argument("--mapped-files", type=int, default=50, help="files in the dynamically mapped run")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/upload.json")
    args = parser.parse_args(argv)
    if args.client == "mapped":
        _mapped_client(args.paths[0])
        return 0
    if args.client:
        _hook_client(args.client, args.paths)
        return 0
    rounds = {"10 MiB": args.rounds, "100 MiB": args.rounds, "1 GiB": args.rounds_1gib}
    result = run(rounds, args.small_files, mapped_files=args.mapped_files)
    if args.save:
        save_result("upload", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
