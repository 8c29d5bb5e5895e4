"""Every endpoint x every fault, against the emulator: retried where safe, never billed twice, failed clearly."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_opus import api
from airflow_provider_opus.api import Endpoint, RetrySafety
from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID
from airflow_provider_opus.exceptions import OpusError, OpusResponseError
from airflow_provider_opus.hooks import opus as hook_module
from airflow_provider_opus.hooks import opus_async as async_hook_module
from airflow_provider_opus.hooks.opus import OpusAsyncHook, OpusHook
from airflow_provider_opus.payload import build_job_payload
from tests.conftest import SERVICE_KEY
from tests.support.proxy import ForwardProxy
from tests.support.task_context import VALID_INPUTS
from tests.support.tls import make_certificates

CATEGORY = "fault_matrix"
pytestmark = pytest.mark.integration

TIMEOUT = 0.5
ENDPOINT_SAFETY = {
    "get_workflow": RetrySafety.IDEMPOTENT,
    "get_upload_url": RetrySafety.IDEMPOTENT,
    "storage_put": RetrySafety.IDEMPOTENT,
    "initiate_job": RetrySafety.ONLY_IF_NOT_ACTED,
    "execute_job": RetrySafety.ONLY_IF_NOT_ACTED,
    "get_job_status": RetrySafety.IDEMPOTENT,
    "get_job_results": RetrySafety.IDEMPOTENT,
    "get_job_audit_log": RetrySafety.IDEMPOTENT,
    "download_output_file": RetrySafety.IDEMPOTENT,
}
ASYNC_ENDPOINTS = ("get_job_status", "get_job_results", "get_job_audit_log")

RETRIED_OK = "retried, succeeded"
OK = "succeeded"
UNSAFE = "not retried (unsafe), failed clearly"
FAILED = "not retried, failed clearly"
GAVE_UP = "retried, then failed clearly"


def _http_date_in(seconds: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds), usegmt=True)


#: fault name -> (fault spec factory, expected outcome for idempotent calls, for billed calls)
FAULTS: dict[str, tuple[Any, str, str]] = {
    "connection refused": (None, GAVE_UP, GAVE_UP),
    "dropped mid-response": (lambda: {"drop": "after"}, RETRIED_OK, UNSAFE),
    "read timeout": (lambda: {"delay": TIMEOUT + 0.7}, RETRIED_OK, UNSAFE),
    "429 Retry-After seconds": (lambda: {"status": 429, "retry_after": "1"}, RETRIED_OK, RETRIED_OK),
    "429 Retry-After HTTP date": (lambda: {"status": 429, "retry_after": _http_date_in(1)}, RETRIED_OK, RETRIED_OK),
    "500 burst": (lambda: {"status": 500, "times": 2}, RETRIED_OK, UNSAFE),
    "502 burst": (lambda: {"status": 502, "times": 2}, RETRIED_OK, UNSAFE),
    "503 burst": (lambda: {"status": 503, "times": 2}, RETRIED_OK, UNSAFE),
    "504 burst": (lambda: {"status": 504, "times": 2}, RETRIED_OK, UNSAFE),
    "non-JSON 200": (lambda: {"status": 200, "body": "<html>proxy error</html>"}, FAILED, FAILED),
    "JSON of the wrong shape": (lambda: {"status": 200, "json": ["unexpected"]}, FAILED, FAILED),
    "slow response": (lambda: {"delay": 0.2}, OK, OK),
    "403 refused": (lambda: {"status": 403}, FAILED, FAILED),
}
#: Cells whose outcome differs from their endpoint's retry safety: storage refuses an expired
#: presigned URL with 403, and the upload asks Opus for a fresh one; the API's 403 is a refused key.
EXCEPTIONS = {("storage_put", "403 refused"): RETRIED_OK}
#: A PUT's answer has no body to parse: a 200 of any body is a successful upload; a file downloaded is any bytes.
NOT_APPLICABLE = {
    (endpoint, fault)
    for endpoint in ("storage_put", "download_output_file")
    for fault in ("non-JSON 200", "JSON of the wrong shape")
}
#: The hook method of one attempt at each endpoint that is not an API call (else ``_send_once``).
ATTEMPT_METHODS = {"storage_put": "_put_stream", "download_output_file": "_download_once"}

SYNC_CELLS = [(e, f) for e in ENDPOINT_SAFETY for f in FAULTS if (e, f) not in NOT_APPLICABLE]
ASYNC_CELLS = [(e, f) for e in ASYNC_ENDPOINTS for f in FAULTS]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _expected(endpoint: str, fault: str) -> str:
    if (endpoint, fault) in EXCEPTIONS:
        return EXCEPTIONS[endpoint, fault]
    _, idempotent, billed = FAULTS[fault]
    return idempotent if ENDPOINT_SAFETY[endpoint] is RetrySafety.IDEMPOTENT else billed


def _run_logical_job(hook: OpusHook, invoice: Any) -> str:
    """One logical run of a job, touching every endpoint once (status polls aside), its output file downloaded."""
    schema = hook.get_job_payload_schema(DEFAULT_WORKFLOW_ID)
    invoice_url = hook.upload_file(invoice)
    job_id = hook.initiate_job(DEFAULT_WORKFLOW_ID, "fault matrix", "one logical run")
    payload = build_job_payload(schema, {**VALID_INPUTS, "Invoice": invoice_url}, workflow_id=DEFAULT_WORKFLOW_ID)
    hook.execute_job(job_id, payload)
    assert hook.wait_for_job(job_id, poll_interval=0.05, timeout=20) == "COMPLETED"
    (output_file,) = hook.get_job_results(job_id)["results"]["outputFiles"]
    hook.get_job_audit_log(job_id)
    hook.download_file(output_file, invoice.parent / "output.pdf")
    return job_id


def _classify(error: Exception | None, attempts: int, faulted: int, slow: bool) -> str:
    if error is None:
        return OK if slow or faulted == 0 else RETRIED_OK
    if attempts > 1:
        return GAVE_UP
    # A malformed answer is no fault of the wire: retrying would read the same answer again; nor
    # would a retry change an answer that fails the task at once (a refused key).
    return FAILED if isinstance(error, (OpusResponseError, AirflowFailException)) else UNSAFE


def _refuse(emulator: Any, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    if endpoint == "storage_put":
        # Every attempt of the upload (retry_limit=2) asks for a URL afresh: each gets a dead one.
        dead_url = {"status": 200, "json": {"presignedUrl": f"{dead}/u", "fileUrl": "f"}, "times": 3}
        emulator.inject("get_upload_url", dead_url)
        return
    if endpoint == "download_output_file":
        # The job's results name an output file on a host that refuses connections.
        real_results = OpusHook.get_job_results

        def results(self: OpusHook, job_execution_id: str) -> dict:
            body = real_results(self, job_execution_id)
            body["results"]["outputFiles"] = [f"{dead}/media/private/generated/output_{job_execution_id}.pdf"]
            return body

        monkeypatch.setattr(OpusHook, "get_job_results", results)
        return
    # Everything before the endpoint works; from it on the API host refuses connections.
    real_send = OpusHook._send_once

    def send(self: OpusHook, ep: Any, path: str, json_body: Any = None) -> Any:
        if ep.name == endpoint:
            conn = {"conn_type": "opus", "host": dead, "password": SERVICE_KEY}
            monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
            self.__dict__.pop("settings", None)
        return real_send(self, ep, path, json_body)

    monkeypatch.setattr(OpusHook, "_send_once", send)


@pytest.mark.parametrize(("endpoint", "fault"), SYNC_CELLS, ids=[f"{e}-{f}" for e, f in SYNC_CELLS])
def test_sync_fault_cell(emulator, recorder, monkeypatch, mocker, tmp_path, endpoint, fault):
    emulator.configure(job_duration=0.1)
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 fault matrix")
    factory = FAULTS[fault][0]
    if factory is None:
        _refuse(emulator, endpoint, monkeypatch)
    else:
        emulator.inject(endpoint, factory())
    attempts_spy = mocker.spy(OpusHook, ATTEMPT_METHODS.get(endpoint, "_send_once"))
    hook = OpusHook(timeout=TIMEOUT, retry_limit=2, retry_delay=0.01)
    error: Exception | None = None
    try:
        _run_logical_job(hook, invoice)
    except OpusError as exc:
        error = exc
    time.sleep(0.8 if fault == "read timeout" else 0)  # let a held-back answer finish before counting
    attempts = [c for c in attempts_spy.call_args_list if endpoint in ATTEMPT_METHODS or c.args[1].name == endpoint]
    faulted = [r for r in emulator.requests(endpoint) if r.get("fault")]
    observed = _classify(error, len(attempts), len(faulted) or (factory is None), fault == "slow response")
    jobs = emulator.jobs()
    executions = sum(job["status"] != "NOT STARTED" for job in jobs)
    expected = _expected(endpoint, fault)
    # A clear error names the call: its path, the file's URL, or the endpoint.
    named = any(part in str(error) for part in (" /", " http", endpoint))
    clear = error is None or (SERVICE_KEY not in str(error) and named)
    passed = observed == expected and len(jobs) <= 1 and executions <= 1 and clear
    recorder.record(
        endpoint=f"{endpoint} (sync)",
        fault=fault,
        expected=expected,
        observed=observed,
        jobs=len(jobs),
        executions=executions,
        passed=passed,
    )
    assert observed == expected, error
    assert len(jobs) <= 1 and executions <= 1
    assert not [r for r in emulator.requests("execute_job") if r["status"] == 409], "a job was executed twice"
    assert clear, f"unclear error: {error}"


@pytest.mark.parametrize(("endpoint", "fault"), ASYNC_CELLS, ids=[f"{e}-{f}" for e, f in ASYNC_CELLS])
async def test_async_fault_cell(emulator, recorder, monkeypatch, mocker, endpoint, fault):
    emulator.configure(job_duration=0)

    def start() -> str:  # OpusHook blocks: in a thread, not on the test's loop
        sync_hook = OpusHook(retry_delay=0.01)
        schema = sync_hook.get_job_payload_schema(DEFAULT_WORKFLOW_ID)
        job_id = sync_hook.initiate_job(DEFAULT_WORKFLOW_ID, "t", "d")
        sync_hook.execute_job(job_id, build_job_payload(schema, VALID_INPUTS))
        return job_id

    job_id = await asyncio.to_thread(start)
    factory = FAULTS[fault][0]
    if factory is None:
        conn = {"conn_type": "opus", "host": f"http://127.0.0.1:{_closed_port()}", "password": SERVICE_KEY}
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    else:
        emulator.inject(endpoint, factory())
    spy = mocker.spy(OpusAsyncHook, "_send_once")
    error: Exception | None = None
    async with OpusAsyncHook(timeout=TIMEOUT, retry_limit=2, retry_delay=0.01) as hook:
        try:
            await getattr(hook, endpoint)(job_id)
        except OpusError as exc:
            error = exc
    faulted = [r for r in emulator.requests(endpoint) if r.get("fault")]
    observed = _classify(error, spy.call_count, len(faulted) or (factory is None), fault == "slow response")
    expected = _expected(endpoint, fault)
    jobs = emulator.jobs()
    passed = observed == expected and len(jobs) == 1 and (error is None or SERVICE_KEY not in str(error))
    recorder.record(
        endpoint=f"{endpoint} (async)",
        fault=fault,
        expected=expected,
        observed=observed,
        jobs=len(jobs),
        executions=sum(job["status"] != "NOT STARTED" for job in jobs),
        passed=passed,
    )
    assert observed == expected, error
    assert len(jobs) == 1


def test_matrix_covers_every_endpoint_of_the_hooks():
    # Every endpoint of the table that a hook module names has a row in the matrix.
    source = inspect.getsource(hook_module) + inspect.getsource(async_hook_module)
    table = {key: value for key, value in vars(api).items() if isinstance(value, Endpoint)}
    names = {value.name for key, value in table.items() if re.search(rf"\b{key}\b", source)}
    assert names == set(ENDPOINT_SAFETY)


# -- a hop between the provider and Opus that fails after forwarding a billed call ---------------------------

#: hop -> (what the ForwardProxy does once Opus answered, the request goes through a CONNECT tunnel (https)).
#: Opus acted on each: a retry would bill a second job. A gateway's 5xx looks like Opus's own, so no 5xx
#: of a billed call is sent again (#20 items 3 and 4).
HOPS: dict[str, tuple[str | int, bool]] = {
    "plain proxy drops after forwarding": ("drop", False),
    "CONNECT proxy drops after forwarding": ("drop", True),
    "gateway 502 after forwarding": (502, False),
    "gateway 503 after forwarding": (503, False),
    "gateway 504 after forwarding": (504, False),
}
HOP_CELLS = [(endpoint, hop) for endpoint in ("initiate_job", "execute_job") for hop in HOPS]


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory):
    from airflow_provider_opus.emulator import OpusEmulator

    certificates = make_certificates(tmp_path_factory.mktemp("tls"))
    with OpusEmulator(
        service_key=SERVICE_KEY,
        job_duration=0.1,
        ssl_certfile=certificates.cert_file,
        ssl_keyfile=certificates.key_file,
        api="legacy",
    ) as running:
        yield running, certificates.ca_file


@pytest.mark.parametrize(("endpoint", "hop"), HOP_CELLS, ids=[f"{e}-{h}" for e, h in HOP_CELLS])
def test_billed_call_through_a_hop_that_fails_after_forwarding(
    emulator, tls_emulator, recorder, monkeypatch, endpoint, hop
):
    after_forwarding, tunnel = HOPS[hop]
    server, ca_file = tls_emulator if tunnel else (emulator, None)
    server.reset()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    def use(proxy_url: str | None) -> OpusHook:
        extra = {"proxy_url": proxy_url, "ca_bundle": ca_file} if proxy_url else {"ca_bundle": ca_file}
        conn = {"conn_type": "opus", "host": server.url, "password": SERVICE_KEY, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
        return OpusHook(timeout=2, retry_limit=3, retry_delay=0.01)

    job_id = use(None).initiate_job(DEFAULT_WORKFLOW_ID, "t", "d") if endpoint == "execute_job" else None
    schema = use(None).get_job_payload_schema(DEFAULT_WORKFLOW_ID)

    def acted() -> bool:  # Opus created (initiate) or started (execute) the job: now the hop fails
        return any(job["status"] != "NOT STARTED" or job_id is None for job in server.jobs())

    with ForwardProxy(after_forwarding=after_forwarding, acted=acted) as proxy:
        hook = use(proxy.url)
        with pytest.raises(OpusError) as info:
            if job_id is None:
                hook.initiate_job(DEFAULT_WORKFLOW_ID, "dag_id.task_id", "one logical run")
            else:
                hook.execute_job(job_id, build_job_payload(schema, VALID_INPUTS))
        sent = len(proxy.targets)
    jobs = server.jobs()
    executions = sum(job["status"] != "NOT STARTED" for job in jobs)
    told = "titled 'dag_id.task_id'" if job_id is None else f"may have started job {job_id}"
    observed = UNSAFE if sent == 1 and told in str(info.value) and SERVICE_KEY not in str(info.value) else GAVE_UP
    recorder.record(
        endpoint=f"{endpoint} (sync)",
        fault=hop,
        expected=UNSAFE,
        observed=observed,
        jobs=len(jobs),
        executions=executions,
        passed=observed == UNSAFE and len(jobs) == 1 and executions <= 1,
    )
    assert sent == 1, f"sent {sent} times: {info.value}"
    assert told in str(info.value)
    assert len(jobs) == 1 and executions <= 1
