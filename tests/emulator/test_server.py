"""server.py: starting and stopping the emulator's listeners, and its responses on the wire."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from airflow_provider_opus.emulator import DEFAULT_WORKFLOW_ID, OpusEmulator
from tests.emulator.helpers import TIMEOUT, port_is_open

pytestmark = pytest.mark.integration


def test_start_and_stop_repeatedly_leaves_no_thread_or_port_behind():
    threads_before = set(threading.enumerate())
    emulator = OpusEmulator(api="legacy")
    for _ in range(3):
        with emulator:
            urls = (emulator.url, emulator.storage_url)
            assert emulator.running
            assert requests.get(f"{emulator.url}/_emulator/health", timeout=TIMEOUT).status_code == 200
            with pytest.raises(RuntimeError, match="already running"):
                emulator.start()
        assert not any(port_is_open(url) for url in urls)
        assert set(threading.enumerate()) == threads_before
    with pytest.raises(RuntimeError, match="not running"):
        emulator.url  # noqa: B018
    emulator.stop()  # stopping a stopped emulator is a no-op


def test_start_on_a_busy_port_raises_and_cleans_up():
    threads_before = set(threading.enumerate())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        emulator = OpusEmulator(storage_port=busy.getsockname()[1], api="legacy")
        with pytest.raises(OSError):
            emulator.start()
    assert not emulator.running
    assert set(threading.enumerate()) == threads_before


def test_responses_are_not_held_back_by_nagle(api):
    api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}")
    started = time.monotonic()
    for _ in range(25):
        api.get(f"/workflow/{DEFAULT_WORKFLOW_ID}")
    # Without TCP_NODELAY on the server side each response takes ~40 ms (Nagle plus delayed ACKs).
    assert (time.monotonic() - started) / 25 < 0.02


def test_the_emulator_imports_without_airflow():
    code = (
        "import sys; import airflow_provider_opus.emulator.__main__, airflow_provider_opus.emulator.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_serves_https_on_both_listeners_with_the_certificate_given(tmp_path):
    from tests.support.tls import make_certificates

    certificates = make_certificates(tmp_path)
    with pytest.raises(ValueError, match="give both ssl_certfile and ssl_keyfile"):
        OpusEmulator(ssl_certfile=certificates.cert_file)
    with OpusEmulator(ssl_certfile=certificates.cert_file, ssl_keyfile=certificates.key_file, api="legacy") as emulator:
        assert emulator.url.startswith("https://127.0.0.1:")
        assert emulator.storage_url.startswith("https://127.0.0.1:")
        health = requests.get(f"{emulator.url}/_emulator/health", timeout=TIMEOUT, verify=certificates.ca_file)
        assert health.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{emulator.url}/_emulator/health", timeout=TIMEOUT)  # not a CA anyone trusts
        urls = (emulator.url, emulator.storage_url)
    assert not any(port_is_open(url.replace("https://", "http://")) for url in urls)
