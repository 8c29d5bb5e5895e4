"""Bad input across operators, sensor, hook and connection: a clear error, no pointless retry, nothing billed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.exceptions import OpusError
from airflow_provider_opus.hooks.opus import OpusAsyncHook, OpusHook
from airflow_provider_opus.operators.opus import (
    OpusExecuteJobOperator,
    OpusGetJobResultsOperator,
    OpusUploadOperator,
)
from airflow_provider_opus.payload import JobPayloadSchema
from airflow_provider_opus.sensors.opus import OpusJobSensor
from airflow_provider_opus.triggers.opus import OpusJobTrigger
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import RecordingServer
from tests.support.task_context import VALID_INPUTS, make_context

CATEGORY = "bad_input"
pytestmark = pytest.mark.integration

BILLED = ("initiate_job", "execute_job")


@dataclass(frozen=True)
class Case:
    """One bad input: how to trigger it, and what the message must say (the input, and the fix)."""

    name: str
    run: Callable[[Path], Any]
    names: str
    fix: str


def run_job(**inputs: Any) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        resolved = {key: (value(tmp) if callable(value) else value) for key, value in inputs.items()}
        merged = {key: value for key, value in {**VALID_INPUTS, **resolved}.items() if value is not _ABSENT}
        return OpusExecuteJobOperator(
            task_id="run", workflow_id=DEFAULT_WORKFLOW_ID, inputs=merged, opus_retry_delay=0.01
        ).execute(make_context())

    return run


_ABSENT = object()


def file_at(name: str, content: bytes | None = b"data", directory: bool = False) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        path = tmp / name
        if directory:
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        return str(path)

    return make


def operator(factory: Callable[[Path], Any]) -> Callable[[Path], Any]:
    return lambda tmp: factory(tmp).execute(make_context())


def with_connection(conn: dict[str, Any], call: Callable[[], Any]) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        previous = os.environ["AIRFLOW_CONN_OPUS_DEFAULT"]
        os.environ["AIRFLOW_CONN_OPUS_DEFAULT"] = json.dumps(conn)
        try:
            return call()
        finally:
            os.environ["AIRFLOW_CONN_OPUS_DEFAULT"] = previous

    return run


def with_environment(name: str, value: str, run: Callable[[Path], Any]) -> Callable[[Path], Any]:
    def run_with(tmp: Path) -> Any:
        previous = os.environ.get(name)
        os.environ[name] = value
        try:
            return run(tmp)
        finally:
            if previous is None:
                del os.environ[name]
            else:
                os.environ[name] = previous

    return run_with


def with_network(call: Callable[[], Any], **extra: Any) -> Callable[[Path], Any]:
    """Run ``call`` with a connection to the default API whose extra holds the network fields; paths in ``{tmp}``."""

    def run(tmp: Path) -> Any:
        fields = {key: value.format(tmp=tmp) if isinstance(value, str) else value for key, value in extra.items()}
        return with_connection({"conn_type": "opus", "password": SERVICE_KEY, "extra": fields}, call)(tmp)

    return run


def with_api_answering(body: dict[str, Any], call: Callable[[str], Any]) -> Callable[[Path], Any]:
    """Run ``call(url)`` with a connection to a server that answers every GET with ``body``, and nothing else."""

    def run(tmp: Path) -> Any:
        with RecordingServer(body=body) as server:
            conn = {"conn_type": "opus", "host": server.url, "password": SERVICE_KEY}
            return with_connection(conn, lambda: call(server.url))(tmp)

    return run


def run_with_workflow_schema(schema: dict[str, Any]) -> Callable[[Path], Any]:
    """Run the execute operator against an API whose workflow has ``schema``: a billed call could not even be made."""
    return with_api_answering(
        {"workflowId": DEFAULT_WORKFLOW_ID, "jobPayloadSchema": schema},
        lambda url: OpusExecuteJobOperator(
            task_id="run", workflow_id=DEFAULT_WORKFLOW_ID, inputs={"X": "x"}, opus_retry_delay=0.01
        ).execute(make_context()),
    )


def _execute_job() -> Any:
    return OpusExecuteJobOperator(
        task_id="run", workflow_id=DEFAULT_WORKFLOW_ID, inputs=VALID_INPUTS, opus_retry_delay=0.01
    ).execute(make_context())


AMBIGUOUS_SCHEMA = {
    f"workflow_input_{i}": {"id": i, "variable_name": f"workflow_input_{i}", "display_name": "Amount", "type": "float"}
    for i in ("a1", "b2")
}


def rendered_then_run(factory: Callable[[], Any], *, native: bool = False, **params: Any) -> Callable[[Path], Any]:
    """Make the task in a DAG whose template folder is the test's, render it with ``params``, and execute it."""

    def run(tmp: Path) -> Any:
        from airflow.sdk import DAG

        with DAG("opus_dag", schedule=None, template_searchpath=str(tmp), render_template_as_native_obj=native) as dag:
            task = factory()
        context = {**make_context(), "dag": dag, "params": params}
        task.render_template_fields(context)
        return task.execute(context)

    return run


def _loop() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def _async_status_of(job_id: str) -> str:
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        return await hook.get_job_status(job_id)


def _status_of(job_id: str) -> Callable[[Path], Any]:
    return lambda tmp: OpusHook(retry_delay=0.01).get_job_status(job_id)


CASES = [
    # -- each input type, through the execute operator
    Case("str given a number", run_job(**{"Customer Name": 3}), "'Customer Name'", "expected a string"),
    Case("float given text", run_job(Threshold="high"), "'Threshold'", "expected a number"),
    Case("float given a bool", run_job(Threshold=True), "'Threshold'", "expected a number"),
    Case("bool given text", run_job(Priority="yes"), "'Priority'", "expected a bool (True or False)"),
    Case("array given a string", run_job(Reviewers="ann,bob"), "'Reviewers'", "expected a list"),
    Case("object given a list", run_job(Metadata=[1, 2]), "'Metadata'", "expected a dict"),
    Case("date given a word", run_job(**{"Due Date": "tomorrow"}), "'Due Date'", "expected a date (YYYY-MM-DD)"),
    Case("date out of range", run_job(**{"Due Date": "2026-13-45"}), "'Due Date'", "expected a date (YYYY-MM-DD)"),
    Case("date given an int", run_job(**{"Due Date": 20261201}), "'Due Date'", "expected a date (YYYY-MM-DD)"),
    Case("file given a number", run_job(Invoice=42), "'Invoice'", "expected a file URL (http/https) or local path"),
    Case("file type unsupported", run_job(Invoice="https://f/x.exe"), "'Invoice'", "allowed: JPEG, JPG, PDF, PNG"),
    Case("file type disallowed", run_job(Invoice="https://f/x.docx"), "'Invoice'", "allowed: JPEG, JPG, PDF, PNG"),
    Case(
        "array_files given a string",
        run_job(**{"Supporting Documents": "https://f/a.pdf"}),
        "'Supporting Documents'",
        "expected a list",
    ),
    Case(
        "array_files item disallowed",
        run_job(**{"Supporting Documents": ["https://f/a.xlsx"]}),
        "'Supporting Documents'",
        "allowed: CSV, DOCX, PDF, PNG, TXT",
    ),
    Case("required input missing", run_job(Threshold=_ABSENT), "'Threshold'", "is required"),
    Case("required input None", run_job(Threshold=None), "'Threshold'", "is required"),
    Case("unknown input name", run_job(Foo=1), "'Foo'", "inputs: Customer Name, Threshold"),
    Case(
        "same input twice",
        run_job(workflow_input_a0hk6ujuo=0.5),
        "'Threshold'",
        "given more than once",
    ),
    Case(
        "ambiguous input name",
        lambda tmp: JobPayloadSchema(AMBIGUOUS_SCHEMA, "wf").build({"Amount": 1.0}),
        "'Amount'",
        "use the variable name",
    ),
    # -- local files given as inputs
    Case("input file missing", run_job(Invoice=file_at("gone.pdf", None)), "gone.pdf", "does not exist"),
    Case("input file empty", run_job(Invoice=file_at("empty.pdf", b"")), "empty.pdf", "is empty"),
    Case("input file is a directory", run_job(Invoice=file_at("dir.pdf", directory=True)), "dir.pdf", "a directory"),
    # -- upload operator
    Case(
        "upload: missing file",
        operator(lambda tmp: OpusUploadOperator(task_id="u", files=str(tmp / "none.pdf"))),
        "none.pdf",
        "does not exist",
    ),
    Case(
        "upload: unsupported type",
        operator(lambda tmp: OpusUploadOperator(task_id="u", files=file_at("a.exe")(tmp))),
        "a.exe",
        "supported: CSV, DOCX",
    ),
    Case(
        "upload: directory",
        operator(lambda tmp: OpusUploadOperator(task_id="u", files=[file_at("d", directory=True)(tmp)])),
        "'",
        "is a directory",
    ),
    Case(
        "upload: empty file",
        operator(lambda tmp: OpusUploadOperator(task_id="u", files=file_at("e.csv", b"")(tmp))),
        "e.csv",
        "is empty",
    ),
    Case("upload: no files", operator(lambda tmp: OpusUploadOperator(task_id="u", files=[])), "files", "give one path"),
    Case(
        "upload: bad access scope",
        lambda tmp: OpusUploadOperator(task_id="u", files="a.pdf", access_scope="public"),
        "access_scope",
        "one of all, user, workspace, organization",
    ),
    # -- execute operator arguments
    Case(
        "empty workflow id",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="", inputs={}).execute(make_context()),
        "workflow_id",
        "app.opus.com/app/workflow/<id>",
    ),
    Case(
        "unknown workflow",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="NoSuchFlow", inputs={}).execute(make_context()),
        "/workflow/NoSuchFlow",
        "check the workflow or job id",
    ),
    Case(
        "inputs and instance both given",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", inputs={}, job_payload_schema_instance={}),
        "inputs",
        "not both",
    ),
    Case(
        "inputs not JSON",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id=DEFAULT_WORKFLOW_ID, inputs="{oops").execute(
            make_context()
        ),
        "inputs",
        "not valid JSON",
    ),
    Case(
        "instance with a wrong type",
        lambda tmp: OpusExecuteJobOperator(
            task_id="r",
            workflow_id=DEFAULT_WORKFLOW_ID,
            job_payload_schema_instance={"workflow_input_a0hk6ujuo": {"value": 1, "type": "str"}},
        ).execute(make_context()),
        "'Threshold'",
        "does not match the workflow's type 'float'",
    ),
    Case(
        "instance with a local path",
        lambda tmp: OpusExecuteJobOperator(
            task_id="r",
            workflow_id=DEFAULT_WORKFLOW_ID,
            job_payload_schema_instance={"workflow_input_h69vx5i4a": {"value": "/x/inv.pdf", "type": "file"}},
        ).execute(make_context()),
        "'Invoice'",
        "pass the path in inputs=",
    ),
    Case(
        "poll interval zero",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", poll_interval=0),
        "poll_interval",
        "must be a positive number of seconds",
    ),
    Case(
        "max poll interval below the poll interval",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", poll_interval=60, max_poll_interval=10),
        "max_poll_interval",
        "at least poll_interval (60 s)",
    ),
    Case(
        "max poll interval not a number",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", max_poll_interval="1h"),
        "max_poll_interval",
        "must be a number of seconds",
    ),
    Case(
        "sensor: max poll interval with exponential backoff",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="j", max_poll_interval=600, exponential_backoff=True),
        "max_poll_interval",
        "not both",
    ),
    Case(
        "running_statuses given as one string",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", running_statuses="QUEUED"),
        "running_statuses",
        "must be a list of status strings",
    ),
    Case(
        "failed_statuses holding COMPLETED",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="j", failed_statuses=["Completed"]),
        "failed_statuses",
        "COMPLETED always means success",
    ),
    Case(
        "a status in both running_statuses and failed_statuses",
        lambda tmp: OpusExecuteJobOperator(
            task_id="r", workflow_id="w", running_statuses=["on hold"], failed_statuses=["ON_HOLD"]
        ),
        "ON HOLD",
        "give each status once",
    ),
    Case(
        "an empty status in running_statuses",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="j", running_statuses=["QUEUED", " "]),
        "running_statuses",
        "must hold non-empty status strings",
    ),
    Case(
        "negative timeout",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", timeout=-1),
        "timeout",
        "must be positive",
    ),
    # -- sensor and results operator
    Case(
        "sensor: unknown job",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="no-such-job").poke(make_context()),
        "/job/no-such-job/status",
        "check the workflow or job id",
    ),
    Case(
        "sensor: empty job id",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="").poke(make_context()),
        "job_execution_id",
        "non-empty string",
    ),
    Case(
        "results: unknown job",
        operator(lambda tmp: OpusGetJobResultsOperator(task_id="r", job_execution_id="no-such-job")),
        "/job/no-such-job/results",
        "check the workflow or job id",
    ),
    Case(
        "results: empty job id",
        operator(lambda tmp: OpusGetJobResultsOperator(task_id="r", job_execution_id=" ")),
        "job_execution_id",
        "non-empty string",
    ),
    Case(
        "results: download folder that cannot be written",
        operator(
            lambda tmp: OpusGetJobResultsOperator(
                task_id="r", job_execution_id="j", download_to=str(Path(file_at("file")(tmp)) / "out")
            )
        ),
        "download_to",
        "choose a folder this worker can write",
    ),
    Case(
        "results: download folder of a wrong type",
        lambda tmp: OpusGetJobResultsOperator(task_id="r", job_execution_id="j", download_to=5),
        "download_to",
        "a local path, a URL such as s3://bucket/folder, or an ObjectStoragePath",
    ),
    Case(
        "hook: download URL that is not http",
        lambda tmp: OpusHook().download_file("ftp://files.opus.com/a.pdf", tmp / "a.pdf"),
        "'ftp://files.opus.com/a.pdf'",
        "is not a plain http(s) URL",
    ),
    Case(
        "connection: file_hosts with a path",
        with_network(lambda: OpusHook().settings, file_hosts="https://files.opus.com/media"),
        "'https://files.opus.com/media'",
        "file_hosts must list hosts such as files.opus.com",
    ),
    # -- hook
    Case(
        "hook: bad access scope",
        lambda tmp: OpusHook().get_upload_url("pdf", "everyone"),
        "access_scope",
        "one of all, user, workspace, organization",
    ),
    Case(
        "hook: poll interval zero",
        lambda tmp: OpusHook().wait_for_job("job", poll_interval=0),
        "poll_interval",
        "positive number of seconds",
    ),
    Case("hook: unknown job", _status_of("missing-job"), "/job/missing-job/status", "check the workflow or job id"),
    # -- connection
    Case(
        "connection without a key",
        with_connection({"conn_type": "opus"}, lambda: OpusHook().get_workflow(DEFAULT_WORKFLOW_ID)),
        "'opus_default'",
        "set its password",
    ),
    Case(
        "connection with a bad host URL",
        with_connection(
            {"conn_type": "opus", "host": "ftp://opus", "password": SERVICE_KEY},
            lambda: OpusHook().get_workflow(DEFAULT_WORKFLOW_ID),
        ),
        "'ftp://opus'",
        "Set it to the API base URL",
    ),
    Case(
        "connection with an empty host name",
        with_connection(
            {"conn_type": "opus", "host": "http://", "password": SERVICE_KEY},
            lambda: OpusHook().get_workflow(DEFAULT_WORKFLOW_ID),
        ),
        "host",
        "Set it to the API base URL",
    ),
    Case(
        "connection with a bad timeout",
        with_connection(
            {"conn_type": "opus", "password": SERVICE_KEY, "extra": {"timeout": "soon"}},
            lambda: OpusHook().get_workflow(DEFAULT_WORKFLOW_ID),
        ),
        "timeout",
        "positive number of seconds",
    ),
    Case(
        "connection with an infinite timeout",
        with_connection(
            {"conn_type": "opus", "password": SERVICE_KEY, "extra": {"timeout": "inf"}},
            lambda: OpusHook().get_workflow(DEFAULT_WORKFLOW_ID),
        ),
        "timeout",
        "up to 3600 (one hour)",
    ),
    Case(
        "connection with a NaN timeout",
        with_connection(
            {"conn_type": "opus", "password": SERVICE_KEY, "extra": {"timeout": "nan"}},
            lambda: OpusHook().get_workflow(DEFAULT_WORKFLOW_ID),
        ),
        "timeout",
        "positive number of seconds up to 3600",
    ),
    Case(
        "connection with a control character inside the key",
        with_connection(
            {"conn_type": "opus", "password": SERVICE_KEY[:10] + "\n" + SERVICE_KEY[10:]},
            lambda: OpusHook().get_workflow(DEFAULT_WORKFLOW_ID),
        ),
        "the service key has a control or non-ASCII character at position 11",
        "paste the key again",
    ),
    Case(
        "connection with a non-ASCII character inside the key (async)",
        with_connection(
            {"conn_type": "opus", "password": SERVICE_KEY + "\u2019"},
            lambda: asyncio.run(_async_status_of("some-job")),
        ),
        "the service key has a control or non-ASCII character",
        "paste the key again",
    ),
    # -- proxy and TLS settings (issue #11 D), before any call
    Case(
        "connection with a SOCKS proxy URL",
        with_network(_execute_job, proxy_url="socks5://proxy.corp:1080"),
        "proxy_url 'socks5://proxy.corp:1080'",
        "Set it to one like http://proxy.example.com:3128",
    ),
    Case(
        "connection with a proxy URL with a bad port (credentials hidden)",
        with_network(_execute_job, proxy_url="http://airflow:proxy-secret@proxy.corp:31 28"),
        "proxy_url 'http://***@proxy.corp:31 28'",
        "is not an http(s) proxy URL",
    ),
    Case(
        "HTTPS_PROXY in the environment not an http(s) URL",
        with_environment("HTTPS_PROXY", "socks5h://proxy.corp:1080", with_network(_execute_job)),
        "HTTPS_PROXY in the environment",
        "or set the connection's proxy_url",
    ),
    Case(
        "connection with a missing CA bundle",
        with_network(_execute_job, ca_bundle="{tmp}/company-ca.pem"),
        "ca_bundle",
        "does not exist. Set it to the path of a PEM file",
    ),
    Case(
        "connection with a CA bundle that is a directory (async)",
        with_network(lambda: asyncio.run(_async_status_of("some-job")), ca_bundle="{tmp}"),
        "ca_bundle",
        "is a directory. Set it to the path of a PEM file",
    ),
    Case(
        "connection with verify_tls not a yes or no",
        with_network(_execute_job, verify_tls="sometimes"),
        "verify_tls",
        "must be true or false",
    ),
    Case(
        "connection with a refused key (401)",
        lambda tmp: OpusExecuteJobOperator(
            task_id="r",
            workflow_id=DEFAULT_WORKFLOW_ID,
            inputs=VALID_INPUTS,
            opus_conn_id="opus_bad_key",
        ).execute(make_context()),
        "service key was refused",
        "check the password of the Opus connection",
    ),
    # -- values JSON cannot carry, found before initiate (issue #11)
    Case(
        "object holding a datetime",
        run_job(Metadata={"when": [1, 2, dt.datetime(2025, 1, 1)]}),
        "'Metadata'['when'][2]",
        "is not JSON: give a string",
    ),
    Case("array holding a set", run_job(Reviewers=[{"ann"}]), "'Reviewers'[0]", "is not JSON: give a list"),
    Case("object holding bytes", run_job(Metadata={"raw": b"x"}), "'Metadata'['raw']", "give a string (decode it)"),
    Case(
        "object holding NaN",
        run_job(Metadata={"x": float("nan")}),
        "'Metadata'['x']",
        "not a JSON number: give a finite number or None",
    ),
    Case(
        "array holding infinity",
        run_job(Reviewers=["ann", float("inf")]),
        "'Reviewers'[1]",
        "not a JSON number: give a finite number or None",
    ),
    Case(
        "float given an int beyond a double",
        run_job(Threshold=10**400),
        "'Threshold'",
        "give a number between -1.8e308 and 1.8e308",
    ),
    Case("object with an int key", run_job(Metadata={1: "a"}), "'Metadata'[1]", "give the key as a string"),
    Case(
        # Airflow itself cannot take such a value as an operator argument (RecursionError): JobPayloadSchema can.
        "object containing itself",
        lambda tmp: JobPayloadSchema(OpusHook().get_job_payload_schema(DEFAULT_WORKFLOW_ID)).build(
            {**VALID_INPUTS, "Metadata": _loop()}
        ),
        "'Metadata'['self']",
        "give a copy without the loop",
    ),
    Case("array nested too deep", run_job(Reviewers=_nested(101)), "'Reviewers'[0]", "levels deep: flatten it"),
    Case(
        "inputs JSON text with NaN",
        lambda tmp: OpusExecuteJobOperator(
            task_id="r", workflow_id=DEFAULT_WORKFLOW_ID, inputs='{"Threshold": NaN}'
        ).execute(make_context()),
        "inputs is JSON text with NaN",
        "give a finite number or null",
    ),
    Case(
        "instance JSON text with Infinity",
        lambda tmp: OpusExecuteJobOperator(
            task_id="r",
            workflow_id=DEFAULT_WORKFLOW_ID,
            job_payload_schema_instance='{"workflow_input_a0hk6ujuo": {"value": Infinity, "type": "float"}}',
        ).execute(make_context()),
        "job_payload_schema_instance is JSON text with Infinity",
        "give a finite number or null",
    ),
    Case(
        "instance field that is not JSON",
        lambda tmp: OpusExecuteJobOperator(
            task_id="r",
            workflow_id=DEFAULT_WORKFLOW_ID,
            job_payload_schema_instance={
                "workflow_input_a0hk6ujuo": {"value": 0.5, "type": "float", "displayName": float("nan")}
            },
        ).execute(make_context()),
        "'Threshold'['displayName']",
        "give a finite number or None",
    ),
    Case(
        "instance .json file not found",
        rendered_then_run(
            lambda: OpusExecuteJobOperator(
                task_id="r", workflow_id=DEFAULT_WORKFLOW_ID, job_payload_schema_instance="payloads/none.json"
            )
        ),
        "job_payload_schema_instance file 'payloads/none.json'",
        "put it next to the DAG file or in a template_searchpath folder",
    ),
    # -- argument types and bounds (issue #11)
    Case(
        "workflow id an int",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id=5),  # type: ignore[arg-type]
        "workflow_id",
        "must be a string, got int 5",
    ),
    Case(
        "workflow id rendered as an int",
        rendered_then_run(
            lambda: OpusExecuteJobOperator(task_id="r", workflow_id="{{ params.workflow }}", inputs=VALID_INPUTS),
            native=True,
            workflow=5,
        ),
        "workflow_id",
        "must be a string, got int 5",
    ),
    Case(
        "timeout NaN",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", timeout=float("nan")),
        "timeout",
        "must be positive and at most 31536000 s (365 days), or None",
    ),
    Case(
        "timeout a string",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", timeout="60"),  # type: ignore[arg-type]
        "timeout",
        "must be a number of seconds or None",
    ),
    Case(
        "poll interval 1e300",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", poll_interval=1e300),
        "poll_interval",
        "must be at most 31536000 s (365 days)",
    ),
    Case(
        "sensor: timeout NaN",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="j", timeout=float("nan")),
        "timeout",
        "must be positive and at most 31536000 s (365 days), or None",
    ),
    Case(
        "sensor: timeout a string",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="j", timeout="60"),  # type: ignore[arg-type]
        "timeout",
        "must be a number of seconds or None",
    ),
    Case(
        "sensor: poke interval 1e300",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="j", poke_interval=1e300),
        "poke_interval",
        "must be at most 31536000 s (365 days)",
    ),
    Case(
        "upload: files None",
        lambda tmp: OpusUploadOperator(task_id="u", files=None),  # type: ignore[arg-type]
        "files",
        "must be a path or a list of paths, got NoneType None",
    ),
    Case(
        "upload: a file that is not a path",
        operator(lambda tmp: OpusUploadOperator(task_id="u", files=[file_at("a.pdf")(tmp), 5])),  # type: ignore[list-item]
        "files[1]",
        "must be a path, got int 5",
    ),
    # -- ids and argument types (issue #20 item 9)
    Case(
        "results: job id None",
        lambda tmp: OpusGetJobResultsOperator(task_id="r", job_execution_id=None),  # type: ignore[arg-type]
        "job_execution_id",
        "must be a non-empty string, got NoneType None",
    ),
    Case(
        "results: job id an int",
        lambda tmp: OpusGetJobResultsOperator(task_id="r", job_execution_id=42),  # type: ignore[arg-type]
        "job_execution_id",
        "must be a non-empty string, got int 42",
    ),
    Case(
        "results: job id '..'",
        operator(lambda tmp: OpusGetJobResultsOperator(task_id="r", job_execution_id="..")),
        "job_execution_id '..'",
        "cannot be an id",
    ),
    Case(
        "sensor: job id with a slash",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="../../workflow/x").poke(make_context()),
        "job_execution_id '../../workflow/x'",
        "cannot be an id",
    ),
    Case(
        "hook: job id '..' (async)",
        lambda tmp: asyncio.run(_async_status_of("..")),
        "job_execution_id '..'",
        "cannot be an id",
    ),
    Case(
        "hook: workflow id with a control character",
        lambda tmp: OpusHook().get_workflow("wf\r\nX-Injected: 1"),
        "workflow_id",
        "holds a control character",
    ),
    Case(
        "title an int",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", title=42),  # type: ignore[arg-type]
        "title",
        "must be a non-empty string or None, got int 42",
    ),
    Case(
        "wait_for_completion a string",
        lambda tmp: OpusExecuteJobOperator(task_id="r", workflow_id="w", wait_for_completion="false"),  # type: ignore[arg-type]
        "wait_for_completion",
        "must be True or False, got 'false'",
    ),
    Case(
        "results: include_audit_log a string",
        lambda tmp: OpusGetJobResultsOperator(task_id="r", job_execution_id="j", include_audit_log="no"),  # type: ignore[arg-type]
        "include_audit_log",
        "must be True or False, got 'no'",
    ),
    Case(
        "retry limit a string",
        lambda tmp: OpusJobSensor(task_id="s", job_execution_id="j", opus_retry_limit="3"),  # type: ignore[arg-type]
        "opus_retry_limit",
        "must be a whole number, 0 or more",
    ),
    # -- a workflow schema the provider cannot read, found before any billed call (issue #20 item 16)
    Case(
        "workflow schema: an entry that is null",
        run_with_workflow_schema({"workflow_input_x": None}),
        "input 'workflow_input_x' of the workflow's schema",
        "is null, expected an object",
    ),
    Case(
        "workflow schema: is_nullable the string 'false'",
        run_with_workflow_schema({"workflow_input_x": {"type": "str", "display_name": "X", "is_nullable": "false"}}),
        "input 'workflow_input_x'",
        "has is_nullable 'false', expected true or false",
    ),
    Case(
        "workflow schema: allowed file types a string",
        run_with_workflow_schema(
            {
                "workflow_input_x": {
                    "type": "file",
                    "display_name": "Invoice",
                    "is_nullable": False,
                    "tags": [{"variable_name": "allowed_file_types", "value": "PDF"}],
                }
            }
        ),
        "input 'workflow_input_x'",
        "expected a list such as ['PDF']",
    ),
    # -- output files (issue #20 item 7)
    Case(
        "hook: download to a name longer than the file system allows",
        lambda tmp: with_api_answering(
            {"a": 1}, lambda url: OpusHook().download_file(f"{url}/a.pdf", tmp / ("n" * 300 + ".pdf"))
        )(tmp),
        "its name has 304 bytes",
        "choose a shorter name",
    ),
    # -- issue #20, round 2: URLs parsers read differently (item 1), misleading errors (13), numbers (17)
    Case(
        "hook: download URL with a backslash before @ (another host to other URL parsers)",
        lambda tmp: OpusHook().download_file("http://evil.example\\@api.opus.com/files/r.pdf", tmp / "r.pdf"),
        "'http://***@api.opus.com/files/r.pdf'",
        "no spaces, backslashes or control characters",
    ),
    Case(
        "hook: download URL with credentials before the host",
        lambda tmp: OpusHook().download_file("https://user:pw@files.opus.com/r.pdf?X-Amz-Signature=s", tmp / "r.pdf"),
        "'https://***@files.opus.com/r.pdf?***'",
        "no credentials before it",
    ),
    Case(
        "hook: download URL that does not parse",
        lambda tmp: OpusHook().download_file("http://[::1/r.pdf", tmp / "r.pdf"),
        "'http://[::1/r.pdf'",
        "is not a plain http(s) URL",
    ),
    Case(
        "hook: download to an existing folder",
        lambda tmp: OpusHook().download_file("https://files.opus.com/r.pdf", tmp),
        "is a folder",
        "give the path of the file to write",
    ),
    Case(
        "connection: file_hosts with a wildcard",
        with_network(lambda: OpusHook().settings, file_hosts="*.opus.com"),
        "'*.opus.com'",
        "each host in full (no wildcards, no credentials)",
    ),
    Case(
        "connection: max_download_bytes zero",
        with_network(lambda: OpusHook().settings, max_download_bytes=0),
        "max_download_bytes",
        "must be a whole number of bytes above 0",
    ),
    Case(
        "hook: retry_delay nan",
        lambda tmp: OpusHook(retry_delay=float("nan")),
        "retry_delay",
        "must be a number of seconds, 0 or more, got float nan",
    ),
    Case(
        "hook: retry_limit None",
        lambda tmp: OpusHook(retry_limit=None),  # type: ignore[arg-type]
        "retry_limit",
        "must be a whole number, 0 or more, got NoneType None",
    ),
    Case(
        "trigger: end_time nan",
        lambda tmp: OpusJobTrigger("job-1", end_time=float("nan")),
        "end_time",
        "must be a Unix time in seconds or None, got float nan",
    ),
    # -- the async hooks' connection-settings cache (issue #14)
    Case(
        "[opus] connection_cache_seconds negative",
        with_environment(
            "AIRFLOW__OPUS__CONNECTION_CACHE_SECONDS", "-1", lambda tmp: asyncio.run(_async_status_of("job-1"))
        ),
        "[opus] connection_cache_seconds",
        "must be a number of seconds, 0 or more",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(emulator, recorder, monkeypatch, tmp_path, case):
    bad_key = {"conn_type": "opus", "host": emulator.url, "password": "revoked-key-0123456789"}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_BAD_KEY", json.dumps(bad_key))
    with pytest.raises(OpusError) as info:
        case.run(tmp_path)
    message = str(info.value)
    billed = [r for endpoint in BILLED for r in emulator.requests(endpoint)]
    fails_fast = isinstance(info.value, AirflowFailException)
    passed = case.names in message and case.fix in message and fails_fast and not billed
    recorder.record(
        case=case.name,
        expected=f"names {case.names}; says {case.fix!r}",
        observed=message[:200],
        passed=passed,
        figures={"billed calls made": len(billed), "task retried (no AirflowFailException)": int(not fails_fast)},
    )
    assert case.names in message, message
    assert case.fix in message, message
    assert fails_fast, f"{type(info.value).__name__} would be retried by Airflow"
    assert not billed, "a billed call was made"
    assert SERVICE_KEY not in message


def test_at_least_forty_cases():
    assert len(CASES) >= 40
