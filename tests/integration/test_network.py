"""Networks as companies run them: real TLS with a CA made here, and a real forward proxy on loopback.

Every case runs on both sides the same way: the blocking hook (workers; ``aiohttp`` on a private event loop of
its thread), the async hook and the trigger (``aiohttp`` on the running loop, every deferred wait), and the
presigned upload. Both hooks share one transport (transport.py), so proxy, CA bundle and ``verify_tls`` are
checked here by the traffic the proxy and the emulator saw, not by any session's attributes. OpusHook blocks:
these async tests call it in a thread (``asyncio.to_thread``), as a user inside an event loop has to.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlsplit

import pytest

from airflow_provider_opus.connection_cache import connection_settings_cache
from airflow_provider_opus.emulator import OpusEmulator
from airflow_provider_opus.exceptions import OpusTransportError
from airflow_provider_opus.hooks.opus import OpusAsyncHook, OpusHook
from airflow_provider_opus.triggers.opus import OpusJobTrigger
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import closed_port, fast_hook, start_job
from tests.support.proxy import ForwardProxy
from tests.support.tls import GeneratedCertificates, make_certificates

pytestmark = pytest.mark.integration

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> GeneratedCertificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def _tls_server(certificates):
    with OpusEmulator(
        service_key=SERVICE_KEY,
        job_duration=0.3,
        ssl_certfile=certificates.cert_file,
        ssl_keyfile=certificates.key_file,
        api="legacy",
    ) as emulator:
        yield emulator


@pytest.fixture
def tls_emulator(_tls_server):
    """The emulator serving HTTPS (API and storage) with a certificate of the test CA, reset."""
    _tls_server.reset()
    _tls_server.configure(job_duration=0.3, job_duration_jitter=0.0)
    yield _tls_server
    _tls_server.reset()


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch):
    """No proxy variable but those a test sets (tests/conftest.py puts loopback in NO_PROXY)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def proxy():
    with ForwardProxy() as running:
        yield running


def use_connection(monkeypatch, url: str, **extra) -> None:
    conn = {"conn_type": "opus", "host": url, "password": SERVICE_KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    connection_settings_cache.clear()  # a test's loop keeps settings read before for a minute (connection_cache.py)


def host_port(url: str) -> str:
    return urlsplit(url).netloc


def upload(tmp_path, hook: OpusHook) -> str:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"%PDF-1.4 test")
    return hook.upload_file(path)


def start_and_upload(hook: OpusHook, tmp_path) -> str:
    """Start a job and upload a file with the blocking hook, in one thread (call it with asyncio.to_thread)."""
    job_id = start_job(hook)
    upload(tmp_path, hook)
    return job_id


async def async_status(job_id: str) -> str:
    async with OpusAsyncHook(retry_delay=0.01) as hook:
        return await hook.get_job_status(job_id)


async def events_of(trigger: OpusJobTrigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def assert_key_only_to_the_api(emulator: OpusEmulator) -> None:
    logged = emulator.requests()
    assert logged, "nothing reached the emulator"
    assert all(entry["had_service_key"] for entry in logged if entry["listener"] == "api")
    assert not any(entry["had_service_key"] for entry in logged if entry["listener"] == "storage")
    assert not any(upload["had_service_key"] or upload["had_authorization"] for upload in emulator.uploads())


# -- TLS -------------------------------------------------------------------------------------------


async def test_with_the_ca_bundle_both_hooks_and_the_upload_work(tls_emulator, certificates, monkeypatch, tmp_path):
    use_connection(monkeypatch, tls_emulator.url, ca_bundle=certificates.ca_file)
    assert tls_emulator.url.startswith("https://")
    hook = fast_hook()
    job_id = await asyncio.to_thread(start_job, hook)  # OpusHook blocks: in a thread, not on the test loop
    assert (await asyncio.to_thread(upload, tmp_path, hook)).startswith("https://")
    assert await async_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert [entry["listener"] for entry in tls_emulator.requests("storage_put")] == ["storage"]
    assert len(tls_emulator.requests("get_job_status")) == 1
    assert_key_only_to_the_api(tls_emulator)


async def test_without_the_ca_bundle_tls_verification_fails_before_anything_is_sent(tls_emulator, monkeypatch):
    use_connection(monkeypatch, tls_emulator.url)
    with pytest.raises(OpusTransportError, match=r"TLS verification failed.*set the connection's ca_bundle") as sync:
        await asyncio.to_thread(fast_hook(retry_limit=0).initiate_job, "B9uGJfZ3CFwOdMKH", "t", "d")
    with pytest.raises(OpusTransportError, match=r"TLS verification failed.*ca_bundle") as deferred:
        await async_status("some-job")
    for info in (sync, deferred):
        assert info.value.request_sent is False
        assert SERVICE_KEY not in str(info.value)
    assert tls_emulator.requests() == []  # the handshake failed: no request reached the server


def test_connection_test_names_tls_verification(tls_emulator, monkeypatch):
    use_connection(monkeypatch, tls_emulator.url)
    ok, message = OpusHook(retry_limit=0).test_connection()
    assert not ok
    assert message.startswith(f"Could not reach {tls_emulator.url}: TLS verification failed")


async def test_verify_tls_off_works_and_warns_for_each_hook(tls_emulator, monkeypatch, caplog, tmp_path):
    use_connection(monkeypatch, tls_emulator.url, verify_tls=False)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_opus.connection"):
        job_id = await asyncio.to_thread(start_and_upload, fast_hook(), tmp_path)  # OpusHook blocks: in a thread
        assert await async_status(job_id) in ("IN PROGRESS", "COMPLETED")
    warnings = [record.getMessage() for record in caplog.records if "verify_tls off" in record.getMessage()]
    assert len(warnings) == 2  # one per hook built: the blocking one and the async one
    assert "'opus_default'" in warnings[0]
    assert "Set ca_bundle" in warnings[0]
    assert SERVICE_KEY not in caplog.text


# -- a forward proxy -------------------------------------------------------------------------------


async def test_proxy_url_carries_every_call_and_the_upload(tls_emulator, certificates, proxy, monkeypatch, tmp_path):
    use_connection(monkeypatch, tls_emulator.url, proxy_url=proxy.url, ca_bundle=certificates.ca_file)
    api, storage = host_port(tls_emulator.url), host_port(tls_emulator.storage_url)
    job_id = await asyncio.to_thread(start_and_upload, fast_hook(), tmp_path)  # OpusHook blocks: in a thread
    blocking = proxy.targets.count(api)
    assert await async_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert {request.method for request in proxy.forwarded} == {"CONNECT"}
    assert blocking >= 1  # the blocking hook's API calls
    assert storage in proxy.targets  # the presigned PUT
    assert proxy.targets.count(api) > blocking  # then the async hook's own connection
    assert_key_only_to_the_api(tls_emulator)


async def test_proxy_credentials_in_the_url_go_to_the_proxy_only(tls_emulator, certificates, monkeypatch, tmp_path):
    secret = "s3cret-proxy-pass"
    with ForwardProxy(credentials=f"airflow:{secret}") as guarded:
        use_connection(
            monkeypatch, tls_emulator.url, proxy_url=guarded.url_with_credentials(), ca_bundle=certificates.ca_file
        )
        hook = fast_hook()
        job_id = await asyncio.to_thread(start_and_upload, hook, tmp_path)  # OpusHook blocks: in a thread
        assert await async_status(job_id) in ("IN PROGRESS", "COMPLETED")
        assert guarded.targets and not any(request.refused for request in guarded.forwarded)
        assert secret not in repr(hook.settings)

        use_connection(monkeypatch, tls_emulator.url, proxy_url=guarded.url, ca_bundle=certificates.ca_file)
        tls_emulator.reset()
        with pytest.raises(OpusTransportError, match="could not connect through the proxy") as sync:
            await asyncio.to_thread(fast_hook(retry_limit=0).initiate_job, "B9uGJfZ3CFwOdMKH", "t", "d")
        with pytest.raises(OpusTransportError, match="could not connect through the proxy") as deferred:
            await async_status(job_id)
    assert [request.refused for request in guarded.forwarded[-2:]] == [True, True]  # 407, both sides
    for info in (sync, deferred):
        assert info.value.request_sent is False
    assert tls_emulator.requests() == []


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
async def test_https_proxy_from_the_environment_applies_to_both_sides(
    tls_emulator, certificates, proxy, monkeypatch, tmp_path, variable
):
    monkeypatch.setenv(variable, proxy.url)
    use_connection(monkeypatch, tls_emulator.url, ca_bundle=certificates.ca_file)
    job_id = await asyncio.to_thread(start_and_upload, fast_hook(), tmp_path)  # OpusHook blocks: in a thread
    blocking = proxy.targets.count(host_port(tls_emulator.url))
    assert await async_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert host_port(tls_emulator.storage_url) in proxy.targets
    assert blocking >= 1  # the blocking hook's API calls
    assert proxy.targets.count(host_port(tls_emulator.url)) > blocking  # and the async hook's
    assert_key_only_to_the_api(tls_emulator)


async def test_http_proxy_from_the_environment_sees_absolute_urls(emulator, proxy, monkeypatch, tmp_path):
    # Plain http through a proxy: the proxy reads each request, headers included. The key goes
    # to the API through it (a proxy for plain http sees everything; use https), never to storage.
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")  # for https only: unused here
    job_id = await asyncio.to_thread(start_and_upload, fast_hook(), tmp_path)  # OpusHook blocks: in a thread
    assert await async_status(job_id) in ("IN PROGRESS", "COMPLETED")
    forwarded = {request.target: request for request in proxy.forwarded}
    assert f"{emulator.url}/job/{job_id}/status" in forwarded  # the async hook's poll
    assert f"{emulator.url}/job/initiate" in forwarded
    (put,) = [request for request in proxy.forwarded if request.target.startswith(emulator.storage_url)]
    assert put.method == "PUT"
    assert "x-service-key" not in put.headers
    assert all(request.headers.get("x-service-key") == SERVICE_KEY for request in proxy.forwarded if request is not put)
    assert_key_only_to_the_api(emulator)


async def test_no_proxy_exempts_the_hosts_it_names(tls_emulator, certificates, proxy, monkeypatch, tmp_path):
    api = host_port(tls_emulator.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", f"example.com, {api}")  # the API's host and port: storage still proxied
    use_connection(monkeypatch, tls_emulator.url, ca_bundle=certificates.ca_file)
    job_id = await asyncio.to_thread(start_and_upload, fast_hook(), tmp_path)  # OpusHook blocks: in a thread
    assert await async_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert proxy.targets == [host_port(tls_emulator.storage_url)]

    monkeypatch.setenv("no_proxy", "*")  # the lower-case name wins, as in curl and Python's urllib
    await asyncio.to_thread(upload, tmp_path, fast_hook())
    assert await async_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert proxy.targets == [host_port(tls_emulator.storage_url)]


async def test_the_connections_proxy_url_wins_over_the_environment(
    tls_emulator, certificates, proxy, monkeypatch, tmp_path
):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "*")
    use_connection(monkeypatch, tls_emulator.url, proxy_url=proxy.url, ca_bundle=certificates.ca_file)
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: in a thread, not on the test loop
    blocking = proxy.targets.count(host_port(tls_emulator.url))
    assert await async_status(job_id) in ("IN PROGRESS", "COMPLETED")
    assert blocking >= 1  # the blocking hook's calls
    assert proxy.targets.count(host_port(tls_emulator.url)) > blocking  # and the async hook's


async def test_an_unreachable_proxy_fails_clearly_and_bills_nothing(emulator, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "")
    with pytest.raises(OpusTransportError, match=r"could not connect through the proxy.*HTTP_PROXY") as sync:
        await asyncio.to_thread(fast_hook(retry_limit=1).initiate_job, "B9uGJfZ3CFwOdMKH", "t", "d")
    with pytest.raises(OpusTransportError, match="could not connect through the proxy") as deferred:
        await async_status("some-job")
    for info in (sync, deferred):
        assert info.value.request_sent is False
    assert emulator.requests() == []


# -- the deferred path: the trigger, over TLS, through the proxy -----------------------------------


@pytest.mark.parametrize("through", ["proxy_url", "HTTPS_PROXY"])
async def test_trigger_polls_over_tls_through_the_proxy(tls_emulator, certificates, proxy, monkeypatch, through):
    if through == "proxy_url":
        use_connection(monkeypatch, tls_emulator.url, proxy_url=proxy.url, ca_bundle=certificates.ca_file)
    else:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        use_connection(monkeypatch, tls_emulator.url, ca_bundle=certificates.ca_file)
    job_id = await asyncio.to_thread(start_job, fast_hook())  # OpusHook blocks: in a thread, not on the test loop
    before = proxy.targets.count(host_port(tls_emulator.url))
    trigger = OpusJobTrigger(job_id, poll_interval=0.05, retry_delay=0.01)
    (event,) = await asyncio.wait_for(events_of(trigger), timeout=60)
    assert (event["status"], event["opus_status"]) == ("success", "COMPLETED")
    assert tls_emulator.requests("get_job_status")
    assert proxy.targets.count(host_port(tls_emulator.url)) > before  # the trigger's own connection
