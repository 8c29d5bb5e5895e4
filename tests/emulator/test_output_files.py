"""output_files.py and the storage listener's downloads: names, byte-exact content, key, redirect, faults."""

from __future__ import annotations

import hashlib
import json
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_opus.emulator import (
    DEFAULT_OUTPUT_FILE_BYTES,
    DEFAULT_WORKFLOW_ID,
    OpusEmulator,
    expected_output_file,
    iter_output_file,
    output_file_path,
)
from airflow_provider_opus.emulator.output_files import parse_output_file_name
from tests.emulator.helpers import REQUIRED_INPUTS, TIMEOUT, Api, fresh_api

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

BIG = 3 * 1024 * 1024 + 5  # several streamed chunks, the last one short
WORKFLOWS = [
    {
        "workflowId": "ThreeFiles000001",
        "name": "Three files",
        "jobPayloadSchema": {},
        "emulator": {"duration_seconds": 0, "output_files": 3, "output_file_bytes": BIG},
    },
    {
        "workflowId": "NoFiles000000001",
        "name": "No files",
        "jobPayloadSchema": {},
        "emulator": {"duration_seconds": 0, "output_files": 0},
    },
    {
        "workflowId": "EmptyFile0000001",
        "name": "Empty file",
        "jobPayloadSchema": {},
        "emulator": {"duration_seconds": 0, "output_file_bytes": 0},
    },
    {
        "workflowId": "TinyFile00000001",
        "name": "Tiny file",
        "jobPayloadSchema": {},
        "emulator": {"duration_seconds": 0, "output_file_bytes": 5},
    },
]


@pytest.fixture(scope="module")
def _custom_server() -> Iterator[OpusEmulator]:
    with OpusEmulator(workflows=WORKFLOWS, api="legacy") as server:
        yield server


@pytest.fixture
def custom(_custom_server: OpusEmulator) -> Iterator[Api]:
    yield from fresh_api(_custom_server)


def completed_job(api: Api, workflow_id: str = DEFAULT_WORKFLOW_ID) -> tuple[str, list[str]]:
    """Run a job to COMPLETED; return its id and its outputFiles."""
    job_id = api.run(REQUIRED_INPUTS if workflow_id == DEFAULT_WORKFLOW_ID else {}, workflow_id=workflow_id)
    assert api.wait_until_finished(job_id) == "COMPLETED"
    return job_id, api.get(f"/job/{job_id}/results").json()["results"]["outputFiles"]


def download(url: str, **kwargs: object) -> tuple[requests.Response, bytes]:
    """GET a file as a stream, the way a careful client does; return the response and what arrived."""
    received = bytearray()
    with requests.get(url, stream=True, timeout=TIMEOUT, **kwargs) as response:  # type: ignore[arg-type]
        for chunk in response.iter_content(chunk_size=256 * 1024):
            received += chunk
    return response, bytes(received)


def test_file_names_and_content_are_deterministic():
    assert output_file_path("abc") == "/media/private/generated/output_abc.pdf"
    assert output_file_path("abc", 3) == "/media/private/generated/output_abc_3.pdf"
    assert parse_output_file_name("output_abc.pdf") == ("abc", 1)
    assert parse_output_file_name("output_abc_3.pdf") == ("abc", 3)
    for name in ("output_abc_1.pdf", "output_abc_03.pdf", "output_.pdf", "output_a_b.pdf", "abc.pdf", "output_abc.txt"):
        assert parse_output_file_name(name) is None, name
    content = expected_output_file("abc")
    assert len(content) == DEFAULT_OUTPUT_FILE_BYTES and content.startswith(b"%PDF-1.4\n")
    assert content == expected_output_file("abc", 1, DEFAULT_OUTPUT_FILE_BYTES)
    assert content != expected_output_file("abd") and content != expected_output_file("abc", 2)
    # Any chunking gives the same bytes, and a longer file starts with the shorter one.
    assert b"".join(iter_output_file("abc", 1, DEFAULT_OUTPUT_FILE_BYTES, chunk_size=7)) == content
    assert expected_output_file("abc", 1, 200_000).startswith(content)
    assert expected_output_file("abc", 1, 5) == b"%PDF-"
    with pytest.raises(ValueError, match="size must be >= 0"):
        next(iter_output_file("abc", 1, -1))


def test_a_completed_jobs_output_file_is_served_byte_exact_without_a_key(api, emulator):
    job_id, files = completed_job(api)
    assert files == [f"{emulator.storage_url}/media/private/generated/output_{job_id}.pdf"]
    response, content = download(files[0])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert int(response.headers["content-length"]) == DEFAULT_OUTPUT_FILE_BYTES == len(content)
    assert content == emulator.expected_output_file(job_id) == expected_output_file(job_id)
    (logged,) = emulator.requests("download_output_file")
    assert logged["listener"] == "storage" and logged["method"] == "GET"
    assert (logged["status"], logged["had_service_key"], logged["path"]) == (200, False, output_file_path(job_id))
    head = requests.head(files[0], timeout=TIMEOUT)
    assert (head.status_code, head.headers["content-length"], head.content) == (
        200,
        str(DEFAULT_OUTPUT_FILE_BYTES),
        b"",
    )


def test_no_file_before_completion_or_for_unknown_jobs_and_names(api, emulator):
    job_id = api.initiate()
    url = f"{emulator.storage_url}{output_file_path(job_id)}"
    assert requests.get(url, timeout=TIMEOUT).status_code == 404  # NOT STARTED
    assert api.execute(job_id, REQUIRED_INPUTS).status_code == 201
    emulator.set_job_status(job_id, "IN PROGRESS")
    response = requests.get(url, timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (404, {"message": f"Output file 1 of job {job_id} not found"})
    with pytest.raises(LookupError):
        emulator.expected_output_file(job_id)
    failed = api.run({})
    assert api.wait_until_finished(failed) == "FAILED"
    emulator.set_job_status(job_id, "COMPLETED")
    for path in (
        output_file_path(failed),
        output_file_path("0" * 32),
        output_file_path(job_id, 2),  # the workflow makes one file
        f"/media/private/generated/output_{job_id}_1.pdf",
        f"/media/private/generated/{job_id}.pdf",
        f"/media/private/uploaded/output_{job_id}.pdf",
    ):
        assert requests.get(f"{emulator.storage_url}{path}", timeout=TIMEOUT).status_code == 404, path
    assert requests.get(url, timeout=TIMEOUT).status_code == 200
    assert [entry["status"] for entry in emulator.requests("download_output_file")] == [404, 404, *[404] * 5, 200]


def test_several_multi_mib_files_arrive_complete(custom):
    job_id, files = completed_job(custom, "ThreeFiles000001")
    base = f"{custom.emulator.storage_url}/media/private/generated"
    assert files == [f"{base}/output_{job_id}.pdf", f"{base}/output_{job_id}_2.pdf", f"{base}/output_{job_id}_3.pdf"]
    digests = set()
    for index, url in enumerate(files, start=1):
        response, content = download(url)
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == BIG == len(content)
        expected = hashlib.sha256()
        for chunk in iter_output_file(job_id, index, BIG):
            expected.update(chunk)
        assert hashlib.sha256(content).hexdigest() == expected.hexdigest()
        digests.add(expected.hexdigest())
    assert len(digests) == 3
    assert custom.emulator.expected_output_file(job_id, 3)[:9] == b"%PDF-1.4\n"
    assert requests.get(f"{base}/output_{job_id}_4.pdf", timeout=TIMEOUT).status_code == 404


def test_no_files_an_empty_file_and_a_file_shorter_than_the_header(custom):
    _, files = completed_job(custom, "NoFiles000000001")
    assert files == []
    _, (empty,) = completed_job(custom, "EmptyFile0000001")
    response, content = download(empty)
    assert (response.status_code, response.headers["content-length"], content) == (200, "0", b"")
    _, (tiny,) = completed_job(custom, "TinyFile00000001")
    assert download(tiny)[1] == b"%PDF-"


@pytest.mark.parametrize("where", ["python", "admin route"])
def test_files_can_require_the_service_key(api, emulator, where):
    job_id, (url,) = completed_job(api)
    if where == "python":
        assert emulator.configure_file_serving(require_key=True) == {"require_key": True, "redirect_to": None}
    else:
        answer = requests.post(f"{emulator.url}/_emulator/file-serving", json={"require_key": True}, timeout=TIMEOUT)
        assert answer.json() == {"require_key": True, "redirect_to": None}
    assert requests.get(f"{emulator.url}/_emulator/file-serving", timeout=TIMEOUT).json()["require_key"] is True
    missing = requests.get(url, timeout=TIMEOUT)
    assert (missing.status_code, missing.json()) == (401, {"message": "Invalid or missing x-service-key"})
    assert requests.get(url, headers={"x-service-key": "wrong-key"}, timeout=TIMEOUT).status_code == 401
    response, content = download(url, headers={"x-service-key": emulator.service_key})
    assert response.status_code == 200 and content == emulator.expected_output_file(job_id)
    logged = emulator.requests("download_output_file")
    assert [(entry["status"], entry["had_service_key"]) for entry in logged] == [(401, False), (401, True), (200, True)]
    assert "wrong-key" not in json.dumps(emulator.requests())
    emulator.reset()  # back to the constructor's setting: no key needed
    assert emulator.state.file_serving() == {"require_key": False, "redirect_to": None}


def test_key_required_from_the_constructor_and_kept_over_reset():
    with OpusEmulator(files_require_key=True, job_duration=0, api="legacy") as emulator:
        api = Api(emulator)
        completed_job(api)
        emulator.reset()  # jobs are gone, but the setting stays
        _, (url,) = completed_job(api)
        assert requests.get(url, timeout=TIMEOUT).status_code == 401
        assert requests.get(url, headers={"x-service-key": emulator.service_key}, timeout=TIMEOUT).status_code == 200
        emulator.configure_file_serving(require_key=False)
        assert requests.get(url, timeout=TIMEOUT).status_code == 200


def test_redirect_points_elsewhere_and_the_target_host_is_served(api, emulator):
    job_id, (url,) = completed_job(api)
    # The same storage under another host name: the redirected request is served there.
    target = emulator.storage_url.replace("127.0.0.1", "localhost")
    emulator.configure_file_serving(redirect_to=target)
    first = requests.get(f"{url}?x=1", allow_redirects=False, timeout=TIMEOUT)
    assert (first.status_code, first.headers["location"]) == (302, f"{target}{output_file_path(job_id)}?x=1")
    response, content = download(url)  # requests follows the redirect
    assert response.status_code == 200 and content == emulator.expected_output_file(job_id)
    assert [entry["status"] for entry in emulator.requests("download_output_file")] == [302, 302, 200]

    # With the key required too, the redirecting host checks it first and the target checks it again.
    emulator.configure_file_serving(require_key=True, redirect_to=target)
    assert requests.get(url, allow_redirects=False, timeout=TIMEOUT).status_code == 401
    keyed = requests.get(url, headers={"x-service-key": emulator.service_key}, allow_redirects=False, timeout=TIMEOUT)
    assert keyed.status_code == 302
    assert requests.get(keyed.headers["location"], timeout=TIMEOUT).status_code == 401
    emulator.configure_file_serving()
    assert requests.get(url, allow_redirects=False, timeout=TIMEOUT).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"redirect_to": "ftp://files.example"}, "redirect_to must be an http(s) URL"),
        ({"redirect_to": "localhost:8080"}, "redirect_to must be an http(s) URL"),
        ({"redirect_to": 5}, "redirect_to must be an http(s) URL"),
        ({"require_key": "no"}, "require_key must be true or false, got 'no'"),
        ({"require_key": True, "redirect": "http://x"}, "redirect: Extra inputs are not permitted"),
    ],
)
def test_invalid_file_serving_settings_are_refused(emulator, body, message):
    answer = requests.post(f"{emulator.url}/_emulator/file-serving", json=body, timeout=TIMEOUT)
    assert answer.status_code == 400 and message in answer.json()["message"]
    assert emulator.state.file_serving() == {"require_key": False, "redirect_to": None}
    with pytest.raises(ValueError, match="redirect_to must be an http"):
        OpusEmulator(files_redirect_to="files.example")


def test_status_and_delay_faults_on_downloads(api, emulator):
    job_id, (url,) = completed_job(api)
    emulator.inject("download_output_file", {"status": 503, "retry_after": "1"}, {"delay": 0.5})
    failed = requests.get(url, timeout=TIMEOUT)
    assert (failed.status_code, failed.headers["retry-after"]) == (503, "1")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, timeout=0.2)
    response, content = download(url)
    assert response.status_code == 200 and content == emulator.expected_output_file(job_id)
    faults = [entry["fault"] for entry in emulator.requests("download_output_file")]
    assert faults == [{"status": 503, "retry_after": "1"}, {"delay": 0.5}, None]


def test_drop_faults_on_downloads_cut_a_large_file_partway(custom):
    emulator = custom.emulator
    job_id, files = completed_job(custom, "ThreeFiles000001")
    emulator.inject("download_output_file", {"drop": "before"}, {"drop": "after"})
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(files[1], timeout=TIMEOUT)
    # A raw socket shows exactly what was sent: requests drops the last partial read when it raises.
    host, port = urlsplit(files[1]).hostname, urlsplit(files[1]).port
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {urlsplit(files[1]).path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        raw = bytearray()
        while chunk := sock.recv(1024 * 1024):
            raw += chunk
    head, _, received = bytes(raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    # The headers announce more than the file, half of it arrives, byte-exact, then the connection closes.
    assert f"content-length: {BIG + 1}".encode() in head.lower()
    assert len(received) == BIG // 2
    assert received == expected_output_file(job_id, 2, BIG)[: BIG // 2]
    logged = emulator.requests("download_output_file")
    assert [(entry["status"], entry["fault"]) for entry in logged] == [
        (None, {"drop": "before"}),
        (200, {"drop": "after"}),
    ]

    emulator.inject("download_output_file", {"drop": "after"})
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        download(files[2])
    assert download(files[2])[1] == expected_output_file(job_id, 3, BIG)


def test_unknown_endpoint_message_lists_the_download_endpoint(emulator):
    with pytest.raises(ValueError, match="storage_put, download_output_file"):
        emulator.inject("download_file", {"status": 500})
