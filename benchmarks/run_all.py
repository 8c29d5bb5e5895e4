"""
Run every benchmark, save its JSON under benchmarks/results/, and regenerate docs/benchmarks.md.

``make bench`` runs this. Each step is the same command the docs quote for reproducing it.

Reproduce::

    .venv/bin/python -m benchmarks.run_all                 # everything (its wall time: top of docs/benchmarks.md)
    .venv/bin/python -m benchmarks.run_all --only upload   # one step, then re-render
    .venv/bin/python -m benchmarks.run_all --render-only   # just re-render from the saved JSON
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from benchmarks.common import (
    PYTHON,
    ROOT,
    bench_env,
    calibrate,
    idle_loop_charge,
    load_result,
    machine_info,
    save_result,
)

#: name -> module arguments; ``python -m benchmarks.<name> ... --save`` writes results/<name>.json.
STEPS: dict[str, list[str]] = {
    "parse_cost": [],
    "per_job": [],
    "poll_economy": [],
    "upload": [],
    "download": [],
    "poll_breakdown": [],
    "triggerer_scale": [],
}


def command(name: str) -> str:
    """The command line that reproduces one step, as the docs quote it."""
    return " ".join([".venv/bin/python", "-m", f"benchmarks.{name}", *STEPS[name]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(STEPS), help="run only these steps")
    parser.add_argument("--render-only", action="store_true", help="re-render docs/benchmarks.md from saved JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    run_info = load_result("run_all") or {}
    steps: dict[str, dict[str, object]] = dict(run_info.get("steps", {}))  # type: ignore[arg-type]
    if not args.render_only:
        load_before = os.getloadavg()[0]
        for name in args.only or list(STEPS):
            print(f"== {command(name)}", flush=True)
            step_started = time.perf_counter()
            load_at_start = os.getloadavg()[0]
            speed, idle = calibrate(), idle_loop_charge()
            done = subprocess.run(
                [PYTHON, "-m", f"benchmarks.{name}", *STEPS[name], "--save"], cwd=ROOT, env=bench_env(), check=False
            )
            elapsed = time.perf_counter() - step_started
            steps[name] = {
                "seconds": elapsed,
                "exit_code": done.returncode,
                "command": command(name),
                # Other work on the machine shows here (1-minute load average after the step; 2 cores).
                "load_average_before": load_at_start,
                "calibration_ms": speed,
                "idle_loop_cpu_ms_per_s": idle,
                "load_average_after": os.getloadavg()[0],
            }
            print(f"== {name}: {elapsed:.0f} s, exit code {done.returncode}", flush=True)
            if done.returncode != 0:
                return done.returncode
        run_info = {
            "machine": machine_info(),
            "load_average_before": load_before,
            "steps": steps,
            "total_seconds": sum(float(step["seconds"]) for step in steps.values()),  # type: ignore[arg-type]
            "full_run": args.only is None,
            "make_bench_seconds": time.perf_counter() - started
            if args.only is None
            else run_info.get("make_bench_seconds"),
        }
        save_result("run_all", run_info)
    from benchmarks.render import render

    path, summary = render()
    print(f"\nWrote {path.relative_to(ROOT)}\n")
    print(summary)
    print(f"\nTotal wall time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
