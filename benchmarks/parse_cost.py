"""
DAG-parse cost: what importing the provider's operator, sensor and trigger modules adds to ``import airflow.sdk``.

Each sample is a fresh interpreter that imports ``airflow.sdk``, then the module, timing both with
``time.perf_counter``; the figure is the median increment over several processes. A bytecode warm-up
process runs first (deployments have .pyc files). A further process constructs every operator and the
deferrable sensor in a DAG with ``socket.socket.connect`` and ``getaddrinfo`` trapped, and lists the heavy
modules present after import and after construction. ``python -X importtime`` gives the provider's
own import tree.

Reproduce::

    .venv/bin/python -m benchmarks.parse_cost
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from typing import Any

from benchmarks.common import PYTHON, ROOT, bench_env, median, save_result

#: label -> the module timed (after airflow.sdk)
CASES = {
    "operators": "airflow_provider_opus.operators.opus",
    "sensors": "airflow_provider_opus.sensors.opus",
    "triggers": "airflow_provider_opus.triggers.opus",
}
HEAVY = (
    "aiohttp",
    "httpx",
    "fastapi",
    "uvicorn",
    "starlette",
    "airflow_provider_opus.emulator",
    "requests",
    "tenacity",
)

_TIME_IMPORT = """
import importlib, json, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
before = set(sys.modules)
importlib.import_module(sys.argv[1])
t2 = time.perf_counter()
new = sorted(set(sys.modules) - before)
print(json.dumps({"sdk_ms": (t1 - t0) * 1000, "increment_ms": (t2 - t1) * 1000, "new_modules": new}))
"""

_CONSTRUCT = """
import json, socket, sys
calls = []
def trap(name):
    original = getattr(socket.socket, name) if name != "getaddrinfo" else socket.getaddrinfo
    def record(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)
    return record
socket.socket.connect = trap("connect")
socket.socket.connect_ex = trap("connect_ex")
socket.getaddrinfo = trap("getaddrinfo")
import airflow.sdk
sdk_modules = set(sys.modules)
import pendulum
from airflow.sdk import DAG
from airflow_provider_opus.operators.opus import (
    OpusExecuteJobOperator, OpusGetJobResultsOperator, OpusUploadOperator,
)
from airflow_provider_opus.sensors.opus import OpusJobSensor
after_import = set(sys.modules)
with DAG("parse_cost", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    upload = OpusUploadOperator(task_id="upload", files=["/data/invoice.pdf"])
    run = OpusExecuteJobOperator(
        task_id="run", workflow_id="B9uGJfZ3CFwOdMKH",
        inputs={"Invoice": upload.output, "Threshold": 0.8}, deferrable=True)
    wait = OpusJobSensor(task_id="wait", job_execution_id=run.output, deferrable=True)
    results = OpusGetJobResultsOperator(task_id="results", job_execution_id=run.output)
    upload >> run >> wait >> results
after_construct = set(sys.modules)
heavy = json.loads(sys.argv[1])
def present(mods):
    return sorted(h for h in heavy if h in mods)
print(json.dumps({
    "network_calls": calls,
    "heavy_after_sdk": present(sdk_modules),
    "heavy_after_import": present(after_import),
    "heavy_after_construct": present(after_construct),
    "modules_added_by_construct": sorted(after_construct - after_import),
}))
"""


def _python(args: list[str]) -> str:
    done = subprocess.run([PYTHON, *args], capture_output=True, text=True, cwd=ROOT, env=bench_env(), timeout=120)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return done.stdout


def _top_level(modules: list[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in modules})


def importtime_tree(module: str) -> list[dict[str, Any]]:
    """The provider's own modules and their cumulative import time, from ``-X importtime`` (after airflow.sdk)."""
    code = f"import airflow.sdk, sys; sys.stderr.write('--- provider ---\\n'); import {module}"
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=ROOT, env=bench_env(), timeout=120
    )
    lines = done.stderr.split("--- provider ---\n", 1)[-1].splitlines()
    rows = []
    for line in lines:
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            rows.append(
                {
                    "self_us": int(match.group(1)),
                    "cumulative_us": int(match.group(2)),
                    "depth": len(match.group(3)) // 2,
                    "module": match.group(4),
                }
            )
    rows.sort(key=lambda row: -row["cumulative_us"])
    return rows[:15]


def run(samples: int = 7) -> dict[str, Any]:
    _python(["-c", "import airflow_provider_opus.operators.opus, airflow_provider_opus.sensors.opus"])  # .pyc warm-up
    result: dict[str, Any] = {"samples": samples, "modules": {}}
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in CASES}
    for _ in range(samples):  # interleaved, so drift on the machine hits every case alike
        for label, module in CASES.items():
            runs[label].append(json.loads(_python(["-c", _TIME_IMPORT, module])))
    for label, module in CASES.items():
        samples_ms = [r["increment_ms"] for r in runs[label]]
        new = runs[label][0]["new_modules"]
        result["modules"][label] = {
            "modules": module,
            "increment_ms_median": median(samples_ms),
            "increment_ms_samples": samples_ms,
            "sdk_ms_median": median(r["sdk_ms"] for r in runs[label]),
            "new_modules_count": len(new),
            "new_top_level_packages": _top_level(new),
        }
        print(f"  {label:40s} +{median(samples_ms):6.1f} ms; new packages: {_top_level(new)}")
    construct = json.loads(_python(["-c", _CONSTRUCT, json.dumps(list(HEAVY))]))
    result["construct"] = construct
    result["importtime_top"] = importtime_tree("airflow_provider_opus.operators.opus")
    print(f"  construct: {json.dumps({k: v for k, v in construct.items() if k != 'modules_added_by_construct'})}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/parse_cost.json")
    args = parser.parse_args(argv)
    result = run(args.samples)
    if args.save:
        save_result("parse_cost", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
