"""Bad input across operators, sensor, hook and connection: a clear error, no pointless retry, nothing billed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.exceptions import OpusError
from airflow_provider_opus.hooks.opus import OpusHook
from airflow_provider_opus.operators.opus import (
    OpusExecuteJobOperator,
    OpusGetJobResultsOperator,
    OpusUploadOperator,
)
from airflow_provider_opus.payload import JobPayloadSchema
from airflow_provider_opus.sensors.opus import OpusJobSensor
from tests.conftest import SERVICE_KEY
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


AMBIGUOUS_SCHEMA = {
    f"workflow_input_{i}": {"id": i, "variable_name": f"workflow_input_{i}", "display_name": "Amount", "type": "float"}
    for i in ("a1", "b2")
}


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
