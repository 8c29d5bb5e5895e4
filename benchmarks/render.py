"""
Fill the generated blocks of docs/benchmarks.md from benchmarks/results/*.json, and draw its charts.

The page is written by hand. Only what lies between ``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->``
is rewritten (tables, lists of figures, reproduce commands), so every figure comes from the JSON and every sentence
from the page. Block ``<step>.<part>`` needs ``benchmarks/results/<step>.json``. A marker that is missing, unmatched,
repeated or unknown is an error that names it, and the page is then left as it was.

Reproduce::

    .venv/bin/python -m benchmarks.render
"""

from __future__ import annotations

import functools
import math
import re
import string
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.charts import write_charts
from benchmarks.common import ROOT, load_result, median

DOC = ROOT / "docs" / "benchmarks.md"
STEPS = ("run_all", "triggerer_scale", "poll_economy", "upload", "download", "parse_cost", "per_job", "poll_breakdown")
KEEPALIVE_N = 200  # benchmarks.triggerer_scale.KEEPALIVE_N
TARGETS = {
    "cpu_target": 1.5,  # OpusJobTrigger's CPU per poll at 1,000, as a multiple of the raw aiohttp floor
    "cpu_target_5k": 1.2,  # the same at 5,000, over the whole run (issue #14)
    "lag_ratio_target": 1.5,  # loop lag p99 at 5,000, as a multiple of the floor's (issue #14)
    "lag_target": 50.0,  # event-loop lag p99, ms
    "conn_target": 0.2,  # "far fewer than polls": at most one TCP connection per five polls
    "keepalive_target": 1.5,  # polls 16 s apart reconnect whatever the client does: held to the floor
    "rss_target": 50.0,  # MiB of peak RSS growth uploading (or downloading) 1 GiB
    "import_target": 30.0,  # ms an import adds to `import airflow.sdk`
}
#: Rows of the triggerer-scale summary the templates name: name -> (N, variant).
SCALE_ROWS: dict[str, tuple[int | str, str]] = {
    "t1k": (1000, "trigger"),
    "f1k": (1000, "aiohttp_shared"),
    "httpx1k": (1000, "httpx_shared"),
    "thread1k": (1000, "to_thread"),
    "t5k": (5000, "trigger"),
    "f5k": (5000, "aiohttp_shared"),
    "u5k": (5000, "trigger_uncached"),
    "tb": ("1000-burst", "trigger"),
    "ub": ("1000-burst", "trigger_uncached"),
    "fb": ("1000-burst", "aiohttp_shared"),
    "t5kf": ("5000-gc-frozen", "trigger"),
    "f5kf": ("5000-gc-frozen", "aiohttp_shared"),
    "thread5k": (5000, "to_thread"),
    "tka": (KEEPALIVE_N, "trigger"),
    "fka": (KEEPALIVE_N, "aiohttp_shared"),
}
NEVER_AT_PARSE = {"aiohttp", "fastapi", "uvicorn", "starlette", "airflow_provider_opus.emulator"}
VARIANT_LABELS = {
    "aiohttp_shared": "raw aiohttp, one shared session (floor)",
    "aiohttp_per_job": "raw aiohttp, session per job",
    "httpx_shared": "raw httpx, one shared AsyncClient",
    "trigger": "**OpusJobTrigger** (hooks share one session per event loop)",
    "trigger_uncached": "OpusJobTrigger, `connection_cache_seconds` 0 (each trigger reads its connection)",
    "to_thread": "sync OpusHook via asyncio.to_thread",
    "trigger_before": "OpusJobTrigger as the `--before` commit has it, in the same rounds",
}
BREAKDOWN_LABELS = {
    "raw_aiohttp": "raw aiohttp GET + `json.loads`, shared session",
    "hook_get_job_status": "`OpusAsyncHook.get_job_status` (retry policy, response checks)",
    "hook_send_once_no_retry": "the hook's single attempt (`_send_once`), no retry policy",
    "tenacity_wrapper_only": "tenacity's `AsyncRetrying` around a no-op (built only after a failure)",
    "endpoint_path_x2": "building the status path twice (as `get_job_status` does)",
    "new_session_first_poll": "new raw `ClientSession`, first poll, close",
    "new_hook_first_poll": "new `OpusAsyncHook` on a loop with an open session: kept connection settings, poll, "
    "release",
    "new_hook_first_poll_cache_cleared": "the same with nothing kept: `aget_connection`, checks, poll, release",
    "aget_connection_only": "`BaseHook.aget_connection` (from an environment variable)",
    "cached_settings_only": "the loop's kept connection settings (`connection_settings_cache.get`)",
    "trigger_log_line": "one `self.log.info` line of the trigger",
}

#: The figure blocks: ``[name]``, then its lines (an indented line continues the one above). ``{x:n2}`` is a number
#: with 2 decimals, ``{x:x2}`` a ratio, ``{ok:met}`` a target's verdict, ``{x:list}`` a list. A line naming a figure
#: this run did not produce is left out, and ``render`` says so (not for a line starting with "?": one the usual
#: plan does not measure). A table block's lines come before its table.
FIGURES = """
[run_all.last-run]
The last full `make bench` took {run[make_bench_seconds]:n0} s of wall time.
[summary]
OpusJobTrigger: CPU per poll, N=1,000 | within {cpu_target:g}x the floor | {t1k[cpu_ms_per_poll]:n3} ms =
  {t1k[cpu_ms_per_poll_vs_floor]:x2} (steady state {t1k[steady_cpu_ms_per_poll_vs_floor]:x2}) | {cpu_ok_1k:met}
OpusJobTrigger: CPU per poll, N=5,000 | within {cpu_target_5k:g}x the floor over the whole run |
  {t5k[cpu_ms_per_poll]:n3} ms = {t5k[cpu_ms_per_poll_vs_floor]:x2} (steady state
  {t5k[steady_cpu_ms_per_poll_vs_floor]:x2}) | {cpu_ok_5k:met}
OpusJobTrigger: loop lag p99, N=5,000 | within {lag_ratio_target:g}x the floor's | {t5k[lag_p99_ms]:n0} ms =
  {t5k[lag_p99_ms_vs_floor]:x2} the floor's ({f5k[lag_p99_ms]:n0} ms) | {lag_ok_5k:met}
1,000 triggers arriving at once: longest loop stall while they start | (reported) |
  {tb[start_lag_max_ms]:n0} ms; {ub[start_lag_max_ms]:n0} ms reading the connection per trigger | n/a
OpusJobTrigger: loop lag p99, N=1,000 | under {lag_target:g} ms | {t1k[steady_lag_p99_ms]:n0} ms after arrival,
  {t1k[lag_p99_ms]:n0} ms including the arrival of the triggers | {lag_ok:met}
OpusJobTrigger: TCP connections, N=1,000 | far fewer than polls (at most 1 per 5) | {t1k[connections]:n0} for
  {t1k[polls]:n0} polls ({conn_1k:.2f} per poll) | {conn_ok_1k:met}
OpusJobTrigger: TCP connections, N=5,000 | far fewer than polls (at most 1 per 5) | {t5k[connections]:n0} for
  {t5k[polls]:n0} polls ({conn_5k:.2f} per poll) | {conn_ok_5k:met}
OpusJobTrigger: TCP connections, N={keepalive_n}, polls {tka[poll_interval]:g} s apart | at most
  {keepalive_target:g}x the floor's (the emulator drops connections idle for 5 s) | {tka[connections]:n0} for
  {tka[polls]:n0} polls; floor {fka[connections]:n0} ({ka_ratio:.2f}x) | {ka_ok:met}
Upload throughput vs `curl -T` | (reported) | {upload_ratios} | n/a
Upload 1 GiB, peak RSS growth | under {rss_target:g} MiB | {gib[hook_rss_growth_mib_max]:n2} MiB | {rss_ok:met}
{upload[small_files][files]} x {small_kib} KiB uploads | (reported) |
  {upload[small_files][files_per_second]:n0} files/s | n/a
{upload[mapped_files][files]} x {mapped_kib} KiB uploads, mapped (`dag.test()`) | (reported) |
  {upload[mapped_files][files_per_second]:n1} files/s | n/a
Download throughput vs `curl -o` | (reported) | {download_ratios} | n/a
Download 1 GiB, peak RSS growth | under {rss_target:g} MiB | {dl_gib[max_rss_growth_mib]:n2} MiB | {dl_rss_ok:met}
Import increment over `airflow.sdk`: operators | under {import_target:g} ms |
  {parse[modules][operators][increment_ms_median]:n1} ms | {operators_ok:met}
Import increment over `airflow.sdk`: sensors | under {import_target:g} ms |
  {parse[modules][sensors][increment_ms_median]:n1} ms | {sensors_ok:met}
Import increment over `airflow.sdk`: triggers | under {import_target:g} ms |
  {parse[modules][triggers][increment_ms_median]:n1} ms | {triggers_ok:met}
Network / heavy imports at import and construction | none (aiohttp, fastapi, uvicorn, emulator) |
  {network_calls} network calls; added: {heavy_added} | {heavy_ok:met}
Status requests, 1-day job at 30 s | (reported) | {fixed_day[requests_mean]:n0}; with a growing interval see
  section 2 | n/a
Per document-review job | (reported) | {per_job[requests_per_job_total]:n0} requests,
  {per_job[cpu_ms_per_job_mean]:n1} ms client CPU | n/a
[triggerer_scale.setup]
- ticker sleep: {tick_ms:g} ms
- idle event loop and ticker: {idle_ms:n1} ms of CPU per second (median over the client processes)
[triggerer_scale.at-1000]
- {t1k[cpu_ms_per_poll]:n3} ms of CPU per poll: {t1k[cpu_ms_per_poll_vs_floor]:x2} the floor
  ({f1k[cpu_ms_per_poll]:n3} ms), {t1k[steady_cpu_ms_per_poll_vs_floor]:x2} in the steady window
- loop lag p99: {t1k[steady_lag_p99_ms]:n0} ms after arrival, {t1k[lag_p99_ms]:n0} ms including the arrival
- {t1k[connections]:n0} TCP connections for {t1k[polls]:n0} polls
[triggerer_scale.at-5000]
- {t5k[cpu_ms_per_poll]:n3} ms of CPU per poll: {t5k[cpu_ms_per_poll_vs_floor]:x2} the floor,
  {t5k[steady_cpu_ms_per_poll_vs_floor]:x2} in the steady window, with {t5k[polls_per_job]:n1} polls per job
- {t5k[connections]:n0} TCP connections for {t5k[polls]:n0} polls
- loop lag p99 {t5k[steady_lag_p99_ms]:n0} ms after arrival, up to {t5k[lag_max_ms]:n0} ms at worst
- {t5k[rss_growth_mib]:n0} MiB more RSS
- the last event {t5k[last_event_after_last_finish_s]:n1} s after the last job ended (poll interval
  {t5k[poll_interval]:g} s)
[triggerer_scale.startup]
- CPU per poll at 5,000: {t5k[cpu_ms_per_poll_vs_floor]:x2} the floor over the whole run,
  {t5k[steady_cpu_ms_per_poll_vs_floor]:x2} in the steady window; the target (within {cpu_target_5k:g}x, on the whole
  run): {cpu_ok_5k:met}
- the same trigger reading its connection at each start (`connection_cache_seconds` 0):
  {u5k[cpu_ms_per_poll_vs_floor]:x2} the floor over the whole run, {u5k[steady_cpu_ms_per_poll_vs_floor]:x2} in the
  steady window
- a waiter's start and end, beyond the steady cost of its polls: about {startup_ms:n2} ms of CPU for the trigger,
  {startup_uncached_ms:n2} ms reading the connection at each start, {startup_floor_ms:n2} ms for the raw floor
- polls per trigger at 5,000: {t5k[polls_per_job]:n1}
- gen-2 garbage collections per run: {t5k[gc_gen2_collections]:n0} for the trigger, {f5k[gc_gen2_collections]:n0} for
  the floor, the longest {t5k[gc_max_pause_ms]:n0} and {f5k[gc_max_pause_ms]:n0} ms
- loop lag p99 at 5,000 over the whole run: {t5k[lag_p99_ms]:n0} ms, {t5k[lag_p99_ms_vs_floor]:x2} the floor's
  ({f5k[lag_p99_ms]:n0} ms); reading the connection at each start: {u5k[lag_p99_ms]:n0} ms
  ({u5k[lag_p99_ms_vs_floor]:x2}); the target (within {lag_ratio_target:g}x): {lag_ok_5k:met}
[triggerer_scale.gc-frozen]
- CPU per poll over the whole run: {t5kf[cpu_ms_per_poll_vs_floor]:x2} the floor
  ({t5k[cpu_ms_per_poll_vs_floor]:x2} without the freeze)
- loop lag p99 over the whole run: {t5kf[lag_p99_ms_vs_floor]:x2} the floor's ({t5k[lag_p99_ms_vs_floor]:x2} without)
- polls made: {t5kf[polls]:n0} by the trigger, {f5kf[polls]:n0} by the floor ({t5k[polls]:n0} and {f5k[polls]:n0}
  without)
- gen-2 collections: {t5kf[gc_gen2_collections]:n0} and {f5kf[gc_gen2_collections]:n0}, the longest
  {t5kf[gc_max_pause_ms]:n0} ms ({t5k[gc_gen2_collections]:n0} and {f5k[gc_gen2_collections]:n0} without, the
  longest {t5k[gc_max_pause_ms]:n0} ms)
[triggerer_scale.burst]
- the longest stall while they start, before any poll: {tb[start_lag_max_ms]:n0} ms for the trigger,
  {ub[start_lag_max_ms]:n0} ms reading the connection at each start, {fb[start_lag_max_ms]:n0} ms for the raw floor
- the longest stall over the whole run (the first polls of all 1,000 come together one interval later):
  {tb[lag_max_ms]:n0}, {ub[lag_max_ms]:n0} and {fb[lag_max_ms]:n0} ms
- CPU per poll over the whole run: {tb[cpu_ms_per_poll_vs_floor]:x2} and {ub[cpu_ms_per_poll_vs_floor]:x2} the floor
[poll_breakdown.findings]
- a raw aiohttp poll: {us[raw_aiohttp]:n0} us of client CPU; the hook's `get_job_status`:
  {us[hook_get_job_status]:n0} us
- tenacity's retry machinery around a no-op: {us[tenacity_wrapper_only]:n0} us
- a trigger's first poll with a new hook: {us[new_hook_first_poll]:n0} us with the connection settings kept on the
  loop (fetching them: {us[cached_settings_only]:n1} us), {us[new_hook_first_poll_cache_cleared]:n0} us reading
  them, of which `BaseHook.aget_connection` (from an environment variable) {us[aget_connection_only]:n0} us
- a status-change log line: {us[trigger_log_line]:n0} us
- GC-tracked objects a waiting trigger keeps alive: {retained[trigger][objects]:n0}
  ({retained[aiohttp_shared][objects]:n0} for the raw loop)
[triggerer_scale.keepalive]
- polls {tka[poll_interval]:g} s apart, {keepalive_n} triggers: {tka[polls]:n0} polls over {tka[connections]:n0}
  TCP connections; the raw floor: {fka[connections]:n0}
[triggerer_scale.httpx]
- {httpx1k[cpu_ms_per_poll]:n2} ms per poll at 1,000 ({httpx1k[cpu_ms_per_poll_vs_floor]:x1} aiohttp)
- {httpx1k[polls]:n0} polls where aiohttp made {f1k[polls]:n0}
[triggerer_scale.to-thread]
- {thread1k[cpu_ms_per_poll]:n2} ms per poll at 1,000 ({thread1k[cpu_ms_per_poll_vs_floor]:x1})
- {thread1k[polls]:n0} polls where the floor made {f1k[polls]:n0}
?- at 5,000: {thread5k[polls_per_job]:n1} polls per job, the last event
  {thread5k[last_event_after_last_finish_s]:n1} s after the last job ended
[poll_economy.virtual-clock]
- agrees with the model in {agree} of {cases} cases
- the longest simulation (a day of 30 s polls) takes {slowest_s:.2f} s
[poll_economy.drift]
- jobs within one poll of the model: {within}
- delay error at the fixed interval, median: {fixed_error_ms:n0} ms
[poll_economy.growing]
- a 1 day job: {fixed_day[requests_mean]:n0} status requests at a fixed 30 s, seen {fixed_day[delay_mean_s]:n0} s
  after it ends on average; {grown_day[requests_mean]:n0} with `max_poll_interval` 1 h, seen after
  {grown_day[delay_mean_s]:n0} s
- a 10 min job: {fixed_10m[requests_mean]:n1} status requests at a fixed 30 s, seen {fixed_10m[delay_mean_s]:n0} s
  after it ends on average; {grown_10m[requests_mean]:n1} with `max_poll_interval` 1 h, seen after
  {grown_10m[delay_mean_s]:n0} s
[upload.table]
The curl command: `curl {upload[curl_flags]}`.
[download.memory]
- downloading 1 GiB grew the hook process's peak RSS by {dl_gib[max_rss_growth_mib]:n2} MiB (target: under
  {rss_target:g} MiB): {dl_rss_ok:met}; the 1 GiB download's growth minus the 10 MiB one's:
  {download[rss_growth_1gib_minus_10mib_mib]:n2} MiB
[upload.memory]
- uploading 1 GiB grew the hook process's peak RSS by {gib[hook_rss_growth_mib_max]:n2} MiB (target: under
  {rss_target:g} MiB): {rss_ok:met}
[upload.small-files]
- {upload[small_files][files]} files of {small_kib} KiB through one hook in a loop:
  {upload[small_files][files_per_second]:n0} files/s, {upload[small_files][cpu_ms_per_file]:n2} ms of client CPU
  per file
- {upload[small_files][requests][get_upload_url]:n0} upload-URL requests and
  {upload[small_files][requests][storage_put]:n0} PUTs (one warm-up file included) over
  {upload[small_files][connections_api]} API and {upload[small_files][connections_storage]} storage connection(s)
[upload.mapped]
- {upload[mapped_files][files]} files of {mapped_kib} KiB, one mapped task instance each:
  {upload[mapped_files][files_per_second]:n1} files/s, {upload[mapped_files][wall_ms_per_file]:n0} ms
  ({upload[mapped_files][cpu_ms_per_file]:n0} ms of CPU) per mapped task
- {upload[mapped_files][requests][get_upload_url]:n0} upload-URL requests and
  {upload[mapped_files][requests][storage_put]:n0} PUTs over {upload[mapped_files][connections_api]} API and
  {upload[mapped_files][connections_storage]} storage connections
[parse_cost.modules]
- `import airflow.sdk` itself: {parse[modules][operators][sdk_ms_median]:n0} ms
- fresh interpreters per module: {parse[samples]}
[parse_cost.heavy]
- socket connects or DNS lookups: {network_calls}
- heavy modules loaded after `import airflow.sdk`: {parse[construct][heavy_after_sdk]:list}
- after importing the provider: {parse[construct][heavy_after_import]:list}
- after constructing the operators: {parse[construct][heavy_after_construct]:list}
[parse_cost.target]
**Target** under {import_target:g} ms: {import_figures}: {imports_ok:met}.
[per_job.requests]
- jobs of {per_job[job_duration_s]:g} s polled every {per_job[poll_interval_s]:g} s
- one warm-up job, then {per_job[jobs_measured]} measured ones
[per_job.connections]
- fixed requests: {fixed_requests:n0}; the trigger's polls: {per_job[trigger_polls_per_job]:n1} here
- the trigger's polls for a 10 min job at the default 30 s interval: {ten_min_polls:n0}
- TCP connections per job: {per_job[tcp_connections_per_job][api]:n1} to the API,
  {per_job[tcp_connections_per_job][storage]:n1} to storage
- uploads that carried the service key to storage: {per_job[uploads_with_service_key]}
[per_job.cpu-figures]
- worker side (everything but the trigger): {per_job[cpu_ms_worker_side_mean]:n2} ms per job
- garbage collection: {per_job[gc_ms_per_job_mean]:n2} ms per job
- per-job totals: {job_totals} ms
- charged to a process waiting in an idle event loop: {per_job[idle_loop_cpu_ms_per_s]:n1} ms of CPU per second;
  the trigger phase lasted {per_job[trigger_phase_wall_s_mean]:n2} s
[poll_breakdown.table]
- {breakdown[calls_per_round]} calls per round, median of {breakdown[rounds]} rounds
"""
#: Table blocks: header (cells joined by " | "), one row per item of the step's results (as ``r``), the items.
TABLES: dict[str, tuple[str, str, Callable[[Any], Iterable[Any]]]] = {
    "poll_economy.table": (
        "job | policy | status requests | delay mean (s) | p95 (s) | max (s)",
        "{r[job]} | {r[policy]} | {r[requests_mean]:n1} | {r[delay_mean_s]:n1} | {r[delay_p95_s]:n1} | "
        "{r[delay_max_s]:n1}",
        lambda economy: economy["table"],
    ),
    "poll_economy.real-run": (
        "policy | jobs | polls | poll count right | delay (s) | delay error (s)",
        "{r[policy]} | {r[jobs]} jobs of {r[job_duration]} | {r[polls_total]:n0} / {r[model_polls_total]:n0} | "
        "{r[jobs_with_exact_poll_count]} / {r[jobs_within_one_poll]} of {r[jobs]} | {r[delay_median_s]:n2} / "
        "{r[model_delay_median_s]:n2} | {r[delay_error_median_s]:n3} / {r[delay_error_max_s]:n3}",
        lambda economy: economy["validation"],
    ),
    "upload.table": (
        "size | rounds | curl (MiB/s) | hook (MiB/s) | hook / curl | per round | hook CPU (s) | "
        "hook RSS growth, max (MiB) | emulator CPU busy, max | key sent to storage",
        "{r[0]} | {r[2]} | {r[1][curl_mib_s_median]:n0} | {r[1][hook_mib_s_median]:n0} | {r[1][ratio_median]:n2} | "
        "{r[3]} | {r[4]:n2} | {r[1][hook_rss_growth_mib_max]:n2} | {r[5]:n2} | {r[6]}",
        lambda upload: [
            (
                label,
                size,
                len(size["rounds"]),
                " ".join(f"{r['ratio']:.2f}" for r in size["rounds"]),
                size.get("hook_cpu_seconds_median"),
                max(max(r["emulator_busy_curl"], r["emulator_busy_hook"]) for r in size["rounds"]),
                "yes" if any(r["had_service_key"] for r in size["rounds"]) else "no",
            )
            for label, size in upload["sizes"].items()
        ],
    ),
    "download.table": (
        "size | rounds | curl (MiB/s) | hook (MiB/s) | hook / curl | per round | hook RSS growth, max (MiB)",
        "{r[0]} | {r[2]} | {r[1][median_curl_mib_per_second]:n0} | {r[1][median_hook_mib_per_second]:n0} | "
        "{r[1][median_throughput_ratio]:n2} | {r[3]} | {r[1][max_rss_growth_mib]:n2}",
        lambda download: [
            (label, size, len(size["rounds"]), " ".join(f"{r['throughput_ratio']:.2f}" for r in size["rounds"]))
            for label, size in download["sizes"].items()
        ],
    ),
    "parse_cost.modules": (
        "module | increment, median (ms) | min (ms) | samples (ms) | packages first loaded",
        "`{r[modules]}` | {r[increment_ms_median]:n1} | {r[min]:n1} | {r[all]} | {r[new_top_level_packages]:list}",
        lambda parse: [
            dict(m, min=min(m["increment_ms_samples"]), all=" ".join(f"{v:.0f}" for v in m["increment_ms_samples"]))
            for m in parse["modules"].values()
        ],
    ),
    "parse_cost.importtime": (
        "module | cumulative (ms)",
        "{r[0]}`{r[1]}` | {r[2]:n1}",
        lambda parse: [
            ("&nbsp;" * 2 * r["depth"], r["module"], r["cumulative_us"] / 1000) for r in parse["importtime_top"][:10]
        ],
    ),
    "per_job.requests": (
        "endpoint | requests per job",
        "{r[0]} | {r[1]:n1}",
        lambda per_job: [
            *((f"`{name}`", count) for name, count in per_job["requests_per_job"].items()),
            ("**total**", per_job["requests_per_job_total"]),
        ],
    ),
    "per_job.cpu": (
        "phase | CPU (ms)",
        "{r[0]} | {r[1]:n2}",
        lambda per_job: [*per_job["cpu_ms_per_phase_mean"].items(), ("**total**", per_job["cpu_ms_per_job_mean"])],
    ),
    "poll_breakdown.table": (
        "operation | CPU (us)",
        "{r[0]} | {r[1]:n1}",
        lambda breakdown: [(BREAKDOWN_LABELS.get(k, k), us) for k, us in breakdown["us_per_call_median"].items()],
    ),
    "poll_breakdown.retained": (
        "waiter | GC-tracked objects kept alive",
        "{r[0]} | {r[1]:n0}",
        lambda breakdown: [
            (VARIANT_LABELS.get(k, k), v["objects"]) for k, v in breakdown["retained_per_waiter"].items()
        ],
    ),
}
SCALE_HEADER = (
    "variant | rounds | CPU/poll all (ms) | x floor | CPU/poll steady (ms) | x floor | polls | TCP conns | "
    "lag p99 after arrival / p99 all / max / max while starting (ms) | gen-2 GCs, longest GC | RSS growth (MiB) | "
    "wall / last event after last job end (s) | events"
)
SCALE_ROW = (
    "{label} | {r[rounds]} | {r[cpu_ms_per_poll]:n3} | {r[cpu_ms_per_poll_vs_floor]:x2} | "
    "{r[steady_cpu_ms_per_poll]:n3} | {r[steady_cpu_ms_per_poll_vs_floor]:x2} | "
    "{r[polls]:n0} ({r[polls_per_job]:n1}/job) | {r[connections]:n0} | "
    "{r[steady_lag_p99_ms]:n0} / {r[lag_p99_ms]:n0} / {r[lag_max_ms]:n0} / {r[start_lag_max_ms]:n0} | "
    "{r[gc_gen2_collections]:n0}, "
    "{r[gc_max_pause_ms]:n0} ms | {r[rss_growth_mib]:n0} | {r[wall_seconds]:n1} / "
    "{r[last_event_after_last_finish_s]:n1} | {r[events_received]:n0}/{n:,}{killed}"
)
MARKER = re.compile(r"^<!--[ \t]*(end[ \t]+)?generated:[ \t]*(\S+?)[ \t]*-->[ \t]*$", re.MULTILINE)

Results = dict[str, Any]


class MarkerError(ValueError):
    """The page's generated-block markers are missing, unmatched, repeated or unknown."""


def splice(page: str, blocks: Mapping[str, str], where: str = "the page") -> str:
    """
    Put ``blocks[name]`` between each pair of markers of ``page``; everything outside them is kept byte for byte.

    :raises MarkerError: a start or end marker without its partner, a block twice or unknown, or a block of
        ``blocks`` that has no markers in the page (so no block is ever dropped silently).
    """
    out: list[str] = []
    pos, open_name, open_line, seen = 0, "", 0, set()
    for match in MARKER.finditer(page):
        is_end, name = bool(match.group(1)), match.group(2)
        line = page.count("\n", 0, match.start()) + 1
        if open_name and not (is_end and name == open_name):
            raise MarkerError(
                f"{where}, line {open_line}: <!-- generated: {open_name} --> has no "
                f"<!-- end generated: {open_name} --> before line {line} ({match.group(0)})"
            )
        if is_end and not open_name:
            raise MarkerError(f"{where}, line {line}: <!-- end generated: {name} --> has no start marker before it")
        if is_end:
            out.append("\n\n" + blocks[name].strip("\n") + "\n\n")
            pos, open_name = match.start(), ""
            continue
        if name not in blocks:
            raise MarkerError(f"{where}, line {line}: <!-- generated: {name} --> names no block that render.py has")
        if name in seen:
            raise MarkerError(f"{where}, line {line}: <!-- generated: {name} --> appears a second time")
        seen.add(name)
        out.append(page[pos : match.end()])
        pos, open_name, open_line = match.end(), name, line
    if open_name:
        raise MarkerError(f"{where}, line {open_line}: <!-- generated: {open_name} --> has no end marker")
    if missing := [name for name in blocks if name not in seen]:
        raise MarkerError(
            f"{where} has no markers for {', '.join(missing)}: put `<!-- generated: NAME -->` and "
            "`<!-- end generated: NAME -->` lines where each block belongs"
        )
    return "".join(out) + page[pos:]


# -- templates -----------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 100):
        return f"{int(value):,}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def _met(ok: Any) -> str:
    return "n/a" if not isinstance(ok, bool) else ("**met**" if ok else "**missed**")


class _Absent(LookupError):
    """A template names a figure this run did not produce."""


class _Tree(dict[str, Any]):
    """JSON as templates read it: ``x[1000]`` also finds key "1000"; a missing key is an absent figure."""

    def __getitem__(self, key: Any) -> Any:
        for k in (key, str(key)):
            if k in self.keys():
                value = dict.get(self, k)
                return _Tree(value) if isinstance(value, dict) else value
        raise _Absent(key)


class _Figures(string.Formatter):
    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        value = kwargs.get(str(key))
        if value is None:
            raise _Absent(key)
        return _Tree(value) if isinstance(value, dict) else value

    def format_field(self, value: Any, format_spec: str) -> str:
        kind, digits = format_spec[:1], format_spec[1:]
        if kind in ("n", "x") and digits.isdigit():
            return _num(value, int(digits), "x" if kind == "x" else "")
        if format_spec in ("met", "list"):
            return _met(value) if format_spec == "met" else ", ".join(value) or "none"
        return str(super().format_field(value, format_spec))


def _fill(templates: Iterable[str], ctx: Mapping[str, Any], left_out: list[str]) -> list[str]:
    """The templates filled in from ``ctx``; those naming a figure this run lacks go to ``left_out`` instead."""
    lines = []
    for template in templates:
        optional, template = template.startswith("?"), template.removeprefix("?")
        try:
            lines.append(_Figures().format(template, **ctx))
        except LookupError:  # _Absent, or an index into a row that lacks it
            if not optional:
                left_out.append(template)
    return lines


def _table(header: str, rows: Iterable[str]) -> str:
    rule = "|" + "|".join(" --- " for _ in header.split(" | ")) + "|"
    return "\n".join([f"| {header} |", rule, *(f"| {row} |" for row in rows)])


def _templates() -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in FIGURES.strip().splitlines():
        if line.startswith("["):
            blocks[line.strip("[]")] = lines = []
        elif line.startswith("  "):
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return blocks


# -- figures that need more than a lookup --------------------------------------------------------------


def _try(make: Callable[[], Any]) -> Any:
    """``make()``, or None (a figure this run did not produce) if it fails for want of data or makes nothing."""
    try:
        value = make()
    except (LookupError, StopIteration, TypeError, ValueError, ZeroDivisionError):
        return None
    return None if value == "" else value


def _startup_ms(row: Mapping[str, Any]) -> float:
    """CPU ms a waiter costs beyond the steady cost of its polls: its start and its end."""
    return float((row["cpu_ms_per_poll"] - row["steady_cpu_ms_per_poll"]) * row["polls_per_job"])


def _context(results: Results) -> dict[str, Any]:
    """The names the templates use: each step's results (by short name), some of their rows, derived figures."""
    scale = (results.get("triggerer_scale") or {}).get("summary", {})
    economy, upload, parse = (results.get(name) or {} for name in ("poll_economy", "upload", "parse_cost"))
    policies = {
        (r["job"], r["policy"].replace("growing: poll_interval 30 s, ", "")): r for r in economy.get("table", [])
    }
    virtual = economy.get("virtual_clock", [])
    ctx: dict[str, Any] = dict(
        TARGETS, keepalive_n=KEEPALIVE_N, run=results.get("run_all"), upload=results.get("upload")
    )
    ctx.update(parse=results.get("parse_cost"), per_job=results.get("per_job"), breakdown=results.get("poll_breakdown"))
    ctx.update({key: scale.get(str(n), {}).get(variant) for key, (n, variant) in SCALE_ROWS.items()})
    ctx["us"] = (ctx["breakdown"] or {}).get("us_per_call_median")
    ctx["retained"] = (ctx["breakdown"] or {}).get("retained_per_waiter")
    for job, key in (("1 day", "day"), ("10 min", "10m")):
        ctx[f"fixed_{key}"] = policies.get((job, "fixed 30 s (default)"))
        ctx[f"grown_{key}"] = policies.get((job, "max_poll_interval 1 h"))
    ctx["gib"] = upload.get("sizes", {}).get("1 GiB")
    ctx["download"] = download = results.get("download") or {}
    ctx["dl_gib"] = download.get("sizes", {}).get("1 GiB")
    derived: dict[str, Callable[[], Any]] = {
        "tick_ms": lambda: results["triggerer_scale"]["params"]["tick_seconds"] * 1000,
        "idle_ms": lambda: median(
            r["idle_cpu_per_second"] * 1000 for r in results["triggerer_scale"]["runs"] if not r["killed"]
        ),
        "cpu_ok_1k": lambda: ctx["t1k"]["cpu_ms_per_poll_vs_floor"] <= ctx["cpu_target"],
        "cpu_ok_5k": lambda: ctx["t5k"]["cpu_ms_per_poll_vs_floor"] <= ctx["cpu_target_5k"],
        "lag_ok_5k": lambda: ctx["t5k"]["lag_p99_ms_vs_floor"] <= ctx["lag_ratio_target"],
        "lag_ok": lambda: max(ctx["t1k"]["steady_lag_p99_ms"], ctx["t1k"]["lag_p99_ms"]) < ctx["lag_target"],
        "conn_1k": lambda: ctx["t1k"]["connections"] / ctx["t1k"]["polls"],
        "conn_5k": lambda: ctx["t5k"]["connections"] / ctx["t5k"]["polls"],
        "conn_ok_1k": lambda: ctx["conn_1k"] <= ctx["conn_target"],
        "conn_ok_5k": lambda: ctx["conn_5k"] <= ctx["conn_target"],
        "ka_ratio": lambda: ctx["tka"]["connections"] / ctx["fka"]["connections"],
        "ka_ok": lambda: ctx["ka_ratio"] <= ctx["keepalive_target"],
        "startup_ms": lambda: _startup_ms(ctx["t5k"]),
        "startup_uncached_ms": lambda: _startup_ms(ctx["u5k"]),
        "startup_floor_ms": lambda: _startup_ms(ctx["f5k"]),
        "agree": lambda: sum(1 for r in virtual if r["agrees"]) if virtual else None,
        "cases": lambda: len(virtual) or None,
        "slowest_s": lambda: max(r["seconds_to_simulate"] for r in virtual),
        "within": lambda: ", ".join(
            f"{r['jobs_within_one_poll']}/{r['jobs']} ({r['policy']})" for r in economy["validation"]
        ),
        "fixed_error_ms": lambda: (
            next(r for r in economy["validation"] if "fixed" in r["policy"])["delay_error_median_s"] * 1000
        ),
        "ten_min_polls": lambda: next(
            r for r in virtual if (r["job"], r["policy"]) == ("10 min", "fixed 30 s (default)")
        )["trigger_polls"],
        "upload_ratios": lambda: ", ".join(f"{k} {_num(s['ratio_median'], 2)}" for k, s in upload["sizes"].items()),
        "rss_ok": lambda: ctx["gib"]["hook_rss_growth_mib_max"] < ctx["rss_target"],
        "download_ratios": lambda: ", ".join(
            f"{k} {_num(s['median_throughput_ratio'], 2)}" for k, s in download["sizes"].items()
        ),
        "dl_rss_ok": lambda: ctx["dl_gib"]["max_rss_growth_mib"] < ctx["rss_target"],
        "small_kib": lambda: upload["small_files"]["bytes_each"] // 1024,
        "mapped_kib": lambda: upload["mapped_files"]["bytes_each"] // 1024,
        "import_figures": lambda: ", ".join(
            f"{k} {_num(m['increment_ms_median'], 1)} ms" for k, m in parse["modules"].items()
        ),
        "imports_ok": lambda: all(m["increment_ms_median"] < ctx["import_target"] for m in parse["modules"].values()),
        "operators_ok": lambda: parse["modules"]["operators"]["increment_ms_median"] < ctx["import_target"],
        "sensors_ok": lambda: parse["modules"]["sensors"]["increment_ms_median"] < ctx["import_target"],
        "triggers_ok": lambda: parse["modules"]["triggers"]["increment_ms_median"] < ctx["import_target"],
        "network_calls": lambda: len(parse["construct"]["network_calls"]),
        "heavy": lambda: [
            m for m in parse["construct"]["heavy_after_construct"] if m not in parse["construct"]["heavy_after_sdk"]
        ],
        "heavy_added": lambda: ", ".join(ctx["heavy"]) or "nothing",
        "heavy_ok": lambda: not parse["construct"]["network_calls"] and not NEVER_AT_PARSE & set(ctx["heavy"]),
        "fixed_requests": lambda: (
            ctx["per_job"]["requests_per_job_total"] - ctx["per_job"]["requests_per_job"].get("get_job_status", 0)
        ),
        "job_totals": lambda: ", ".join(f"{ms:.0f}" for ms in ctx["per_job"]["cpu_ms_per_job_samples"]),
    }
    for name, make in derived.items():
        ctx[name] = _try(make)
    return ctx


# -- blocks --------------------------------------------------------------------------------------------


def _summary(rows: list[str]) -> str:
    missed = [row.split(" | ")[0] for row in rows if row.endswith(_met(False))]
    return _table("what | target | measured | result", rows) + f"\n\nMissed: {'; '.join(missed) or 'none'}."


def _machine(run_info: dict[str, Any]) -> str:
    machine, steps = run_info.get("machine", {}), run_info.get("steps", {})

    def per_step(a: str, b: str) -> str:
        return ", ".join(f"{name} {_num(step.get(a), 1)} / {_num(step.get(b), 1)}" for name, step in steps.items())

    rows = [
        ("CPU", machine.get("cpu_model", "?")),
        ("cores (logical / usable)", f"{machine.get('logical_cpus')} / {machine.get('affinity_cpus')}"),
        ("memory", f"{machine.get('memory_gib')} GiB"),
        ("OS", machine.get("os", "?")),
        ("Python", machine.get("python", "?")),
        ("curl", machine.get("curl", "?")),
        *machine.get("packages", {}).items(),
        ("measured", machine.get("measured_at", "?")),
        (
            "at the start of each step: CPU ms of a fixed Python workload / CPU ms charged per second to an idle "
            "asyncio loop",
            per_step("calibration_ms", "idle_loop_cpu_ms_per_s"),
        ),
        (
            f"1-min load average at the start / end of each step ({machine.get('affinity_cpus', '?')} cores)",
            per_step("load_average_before", "load_average_after"),
        ),
    ]
    return _table(" | ", (f"{label} | {value}" for label, value in rows))


def _scale_tables(summary: dict[str, Any], fill: Callable[..., list[str]]) -> str:
    out = []

    def order(name: str) -> tuple[int, int, str]:
        # Sizes first, then the burst, then keep-alive: it is about long poll intervals, not about scale.
        return (name == str(KEEPALIVE_N), not name.isdigit(), int(name.split("-")[0]), name)

    for name, rows in sorted(summary.items(), key=lambda item: order(item[0])):
        first = next(iter(rows.values()))
        n = int(first.get("n") or name.split("-")[0])
        jobs = f"jobs of {first['job_duration']:g} s + U(0, {first['job_duration_jitter']:g}) s"
        if name == str(KEEPALIVE_N):
            jobs += f", all arriving within {first['arrival_window']:g} s: keep-alive at a poll interval above "
            jobs += "aiohttp's 15 s idle timeout"
        elif first.get("arrival_window") == 0:
            jobs += ", all arriving at once"
        if first.get("gc_collect_first"):
            jobs += ", a full collection (`gc.collect()`) in the client just before they arrive"
        if first.get("gc_frozen"):
            jobs += ", the client's heap frozen (`gc.freeze()`) before the run"
        lines = []
        for variant, row in rows.items():
            killed = f" ({row['killed_runs']} run(s) killed at the time cap)" if row.get("killed_runs") else ""
            lines += fill(
                [SCALE_ROW], {"r": row, "n": n, "label": VARIANT_LABELS.get(variant, variant), "killed": killed}
            )
        heading = f"### N = {n:,}, poll interval {first['poll_interval']:g} s, {jobs}"
        out.append(f"{heading}\n\n{_table(SCALE_HEADER, lines)}")
    return "\n\n".join(out)


def _command(step: str, results: Results) -> str:
    steps = (results.get("run_all") or {}).get("steps", {})
    return str(steps.get(step, {}).get("command") or f".venv/bin/python -m benchmarks.{step}")


def _reproduce(step: str, results: Results) -> str:
    seconds = (results.get("run_all") or {}).get("steps", {}).get(step, {}).get("seconds")
    took = f" (took {seconds:.0f} s in this run)" if seconds else ""
    return f"Reproduce{took}:\n\n```console\n$ {_command(step, results)}\n```"


def render_blocks(results: Results) -> tuple[dict[str, str], list[str]]:
    """
    Every block the page must have markers for, rendered from ``results``, and the template lines left out.

    A block's figure lines (``FIGURES``) come first, then its table, if it has one. A block of a step that has no
    results says how to produce them.
    """
    ctx, templates, left_out = _context(results), _templates(), list[str]()

    def fill(lines: Iterable[str], names: Mapping[str, Any] = ctx) -> list[str]:
        return _fill(lines, names, left_out)

    def table(name: str, header: str, row: str, items: Callable[[Any], Iterable[Any]]) -> str:
        rows = _try(lambda: list(items(results[name.split(".")[0]])))
        if rows is None:
            left_out.append(f"the table of {name}")
            return ""
        return _table(header, [line for r in rows for line in fill([row], {"r": r})])

    summary = templates.pop("summary")
    made: dict[str, Callable[[], str]] = {
        "summary": lambda: _summary(fill(summary)),
        "run_all.machine": lambda: _machine(results["run_all"]),
        "triggerer_scale.tables": lambda: _scale_tables(results["triggerer_scale"]["summary"], fill),
        **{name: functools.partial(table, name, *spec) for name, spec in TABLES.items()},
        **{f"{step}.reproduce": functools.partial(_reproduce, step, results) for step in STEPS[1:]},
    }
    blocks = {}
    for name in dict.fromkeys([*templates, *made]):
        step = name.split(".")[0] if "." in name else ""
        if step and not results.get(step):
            fix = "make bench" if step == "run_all" else f"{_command(step, results)} --save"
            blocks[name] = f"No results yet: run `{fix}`."
        else:
            text = ["\n".join(fill(templates.get(name, [])))] + ([made[name]()] if name in made else [])
            blocks[name] = "\n\n".join(part for part in text if part) or "Not measured in this run."
    return blocks, left_out


def render(doc: Path = DOC, results: Results | None = None) -> tuple[Path, str]:
    """
    Rewrite the generated blocks of ``doc`` (nothing else) and its charts from ``results``.

    The charts (:mod:`benchmarks.charts`) go to ``images/`` next to ``doc``. Return ``doc`` and the summary.
    """
    results = results if results is not None else {name: load_result(name) for name in STEPS}
    blocks, left_out = render_blocks(results)
    where = doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc
    page = splice(doc.read_text(), blocks, where=str(where))
    write_charts(results, doc.parent / "images")
    doc.write_text(page)
    for template in left_out:
        print(f"left out, not in these results: {template}", file=sys.stderr)
    return doc, blocks["summary"]


def main() -> int:
    try:
        path, summary = render()
    except MarkerError as exc:
        print(f"benchmarks.render: {exc} (the page was left as it was)", file=sys.stderr)
        return 1
    print(f"Wrote {path}\n\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
