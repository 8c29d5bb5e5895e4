"""Command line: ``python -m airflow_provider_opus.emulator``, runs the emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from airflow_provider_opus.emulator.generations import API_GENERATIONS, DEFAULT_API
from airflow_provider_opus.emulator.server import DEFAULT_SERVICE_KEY, OpusEmulator
from airflow_provider_opus.emulator.workflows import RESULTS_SHAPES

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

SERVICE_KEY_ENV = "OPUS_EMULATOR_SERVICE_KEY"


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the emulator in the foreground.

    :param argv: command line arguments; None for ``sys.argv[1:]``.
    :return: the process exit code.
    """
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_opus.emulator",
        description="Run a local Opus API emulator (API, and storage for uploads and output files) until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="API port, 0 for any (default: %(default)s)")
    parser.add_argument(
        "--storage-port", type=int, default=0, help="upload storage port, 0 for any (default: %(default)s)"
    )
    parser.add_argument(
        "--service-key",
        help=f"x-service-key to accept (default: ${SERVICE_KEY_ENV}, else {DEFAULT_SERVICE_KEY!r}); "
        "prefer the environment variable, as command lines are visible to other users",
    )
    parser.add_argument(
        "--api",
        choices=API_GENERATIONS,
        default=DEFAULT_API,
        help="API generation to serve: current (what Opus publishes today) or legacy (the older reference) "
        "(default: %(default)s)",
    )
    parser.add_argument("--workflows", help="workflows JSON file (default: the bundled workflows)")
    parser.add_argument("--job-duration", type=float, default=1.0, help="seconds a job runs (default: %(default)s)")
    parser.add_argument(
        "--results-shape",
        choices=RESULTS_SHAPES,
        default="results",
        help="results shape of workflows that set none in their emulator section (default: %(default)s)",
    )
    parser.add_argument(
        "--files-require-key",
        action="store_true",
        help="answer 401 to output file downloads without the x-service-key (default: serve them to anyone)",
    )
    parser.add_argument(
        "--files-redirect-to",
        metavar="URL",
        help="answer output file downloads with a 302 to URL plus the file's path (default: serve them)",
    )
    args = parser.parse_args(argv)
    service_key = args.service_key or os.environ.get(SERVICE_KEY_ENV) or DEFAULT_SERVICE_KEY

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        emulator = OpusEmulator(
            service_key=service_key,
            workflows=args.workflows,
            job_duration=args.job_duration,
            host=args.host,
            port=args.port,
            storage_port=args.storage_port,
            results_shape=args.results_shape,
            files_require_key=args.files_require_key,
            files_redirect_to=args.files_redirect_to,
            api=args.api,
        )
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        emulator.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}: {exc}", file=sys.stderr)
        return 1
    try:
        print(_banner(emulator, key_is_default=service_key == DEFAULT_SERVICE_KEY), flush=True)
        stop.wait()
    finally:
        emulator.stop()
    return 0


def _banner(emulator: OpusEmulator, key_is_default: bool) -> str:
    # The key itself is never printed: terminals and CI logs get copied around.
    connection = json.dumps(
        {
            "conn_type": "opus",
            "host": emulator.url,
            "password": f"${SERVICE_KEY_ENV}",
            "extra": emulator.connection_extra(),
        }
    )
    key_note = (
        f"the default service key (export {SERVICE_KEY_ENV}=emulator-service-key first)"
        if key_is_default
        else f"your service key in ${SERVICE_KEY_ENV} (export it first if you passed --service-key)"
    )
    workflows = ", ".join(f"{workflow.workflow_id} ({workflow.name})" for workflow in emulator.state.served_workflows())
    other = "legacy" if emulator.api == "current" else "current"
    # Double-quoted for the shell, so that the placeholder expands when the line is pasted.
    escaped = connection.replace('"', '\\"')
    return "\n".join(
        [
            f"Opus emulator API:     {emulator.url}",
            f"Opus emulator storage: {emulator.storage_url}",
            f"API generation: {emulator.api} (--api {other} for the other)",
            f"Workflows: {workflows}",
            f"To point Airflow at it, with {key_note}:",
            f'  export AIRFLOW_CONN_OPUS_DEFAULT="{escaped}"',
            "Stop with Ctrl+C.",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
