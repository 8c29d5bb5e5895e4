"""transport.py: a failed request named, and whether the server can have seen it."""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp
import pytest
from yarl import URL

from airflow_provider_opus.exceptions import OpusResponseError, OpusServerError, OpusTLSError, OpusTransportError
from airflow_provider_opus.transport import MAX_RESPONSE_BYTES, ResponseBody, transport_error
from tests.unit.helpers import BASE, KEY, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


def _key(host: str = "h") -> aiohttp.client_reqrep.ConnectionKey:
    return aiohttp.client_reqrep.ConnectionKey(host, 443, True, True, None, None, None)


def test_transport_error_says_whether_the_request_was_sent(opus_http):
    opus_http.post(f"{BASE}/job/initiate", exc=aiohttp.ServerTimeoutError("read"))
    with pytest.raises(OpusTransportError) as info:
        hook().initiate_job("wf", "t", "d")
    assert info.value.request_sent is True
    assert "POST /job/initiate failed (read timeout; Opus may have created the job" in str(info.value)


def _aiohttp_failures():
    refused = aiohttp.ClientConnectorError(_key(), OSError(111, "refused"))
    return [
        (refused, "could not connect", False),
        (aiohttp.ServerTimeoutError("read"), "read timeout", True),
        # aiohttp's total timeout: the deadline of the whole call ran out
        (asyncio.TimeoutError(), "the response took longer than 2 s", True),
        (aiohttp.ServerDisconnectedError(), "connection dropped (ServerDisconnectedError)", True),
        # the connection closed while the body arrived
        (aiohttp.ClientPayloadError("not completed"), "connection dropped (ClientPayloadError)", True),
        *[
            (getattr(aiohttp, name)("connect"), "could not connect", False)
            for name in ["ConnectionTimeoutError"]
            if hasattr(aiohttp, name)  # aiohttp 3.10+: a ServerTimeoutError that must not read as a read timeout
        ],
    ]


@pytest.mark.parametrize(("exc", "reason", "request_sent"), _aiohttp_failures())
def test_aiohttp_failures_are_named_by_the_same_table(exc, reason, request_sent):
    error = transport_error("GET", "/job/j/status", exc, timeout=2.0)
    assert (error.reason, error.request_sent) == (reason, request_sent)


# -- ResponseBody: at most MAX_RESPONSE_BYTES of any answer ------------------------------------


def test_a_body_is_kept_whole_up_to_the_limit():
    body = ResponseBody("GET", "/p", 200, None)
    assert body.add(b"x" * (MAX_RESPONSE_BYTES - 1)) is True
    assert body.add(b"y") is True
    assert len(body.content) == MAX_RESPONSE_BYTES


def test_a_2xx_body_over_the_limit_is_refused_at_the_byte_past_it():
    body = ResponseBody("GET", "/p", 200, None)
    body.add(b"x" * MAX_RESPONSE_BYTES)
    with pytest.raises(OpusResponseError) as info:
        body.add(b"y")
    assert info.value.http_status == 200
    assert f"larger than {MAX_RESPONSE_BYTES} bytes" in str(info.value)


@pytest.mark.parametrize("announced", [MAX_RESPONSE_BYTES + 1, str(10 * MAX_RESPONSE_BYTES)])
def test_a_2xx_body_announced_over_the_limit_is_refused_before_reading(announced):
    with pytest.raises(OpusResponseError, match="larger than"):
        ResponseBody("POST", "/job/initiate", 201, announced)


def test_an_error_answer_over_the_limit_keeps_its_status_and_first_bytes(opus_http):
    # A 503 is still a 503 (retried), whatever its size: its first bytes serve for the message.
    body = ResponseBody("GET", "/p", 503, str(10 * MAX_RESPONSE_BYTES))
    assert body.wants_more is False
    body = ResponseBody("GET", "/p", 503, None)
    assert body.add(b'{"message": "busy"}' + b" " * MAX_RESPONSE_BYTES) is False
    assert len(body.content) == MAX_RESPONSE_BYTES
    opus_http.get(f"{BASE}/job/j1/status", status_code=503, body=b" " * (MAX_RESPONSE_BYTES + 10))
    with pytest.raises(OpusServerError):
        hook(retry_limit=0).get_job_status("j1")


def test_a_bad_content_length_is_ignored_and_the_body_counted():
    body = ResponseBody("GET", "/p", 200, "not a number")
    assert body.add(b"{}") is True


# -- proxy and TLS: one rule, in each library's terms ----------------------------------------------


def test_only_a_certificate_verification_failure_is_named_tls_and_unsent():
    cause = ssl.SSLCertVerificationError(1, "verify failed")
    untrusted = transport_error("POST", "/p", aiohttp.ClientConnectorCertificateError(_key(), cause))
    assert isinstance(untrusted, OpusTLSError)
    assert untrusted.request_sent is False
    assert untrusted.reason.startswith("TLS verification failed")
    assert "set the connection's ca_bundle" in untrusted.reason
    # Another failed handshake is a connection that could not be made (aiohttp raises it only while connecting).
    handshake = transport_error("POST", "/p", aiohttp.ClientSSLError(_key(), ssl.SSLEOFError(8, "EOF")))
    assert not isinstance(handshake, OpusTLSError)
    assert (handshake.reason, handshake.request_sent) == ("could not connect", False)
    # A TLS error after the request went out stays a dropped connection, not resent.
    eof = transport_error("POST", "/p", aiohttp.ClientOSError(8, "EOF occurred in violation of protocol"))
    assert not isinstance(eof, OpusTLSError)
    assert (eof.reason, eof.request_sent) == ("connection dropped (ClientOSError)", True)


def _settings(**fields):
    from airflow_provider_opus.connection import OpusConnectionSettings

    return OpusConnectionSettings("opus_default", "https://opus.example.com", "key", **fields)


@pytest.mark.parametrize("proxy_url", [None, "http://p:3128"])
def test_the_api_and_storage_calls_take_the_proxy_and_the_cas(opus_http, monkeypatch, tmp_path, proxy_url):
    from airflow_provider_opus.transport import aiohttp_ssl
    from tests.support.tls import make_certificates

    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    extra = {"ca_bundle": make_certificates(tmp_path).ca_file, **({"proxy_url": proxy_url} if proxy_url else {})}
    conn = {"conn_type": "opus", "host": BASE, "password": KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    opus_http.post(f"{BASE}/job/file/upload", json={"presignedUrl": "https://s.example/u?sig=1", "fileUrl": "f"})
    opus_http.put("https://s.example/u", status_code=200)
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    h = hook()
    h.upload_file(tmp_path / "a.pdf")
    assert [r.kwargs["proxy"] for r in opus_http.request_history] == [proxy_url, proxy_url]
    # both sessions (the API's and the bare storage one) verify with the connection's CAs
    assert {r.session.connector._ssl for r in opus_http.request_history} == {aiohttp_ssl(h.settings)}


def test_aiohttp_trusts_certifi_or_the_ca_bundle(tmp_path):
    import certifi

    from airflow_provider_opus.transport import aiohttp_ssl
    from tests.support.tls import make_certificates

    assert aiohttp_ssl(_settings(verify_tls=False)) is False
    public = aiohttp_ssl(_settings())
    assert isinstance(public, ssl.SSLContext)
    assert (public.verify_mode, public.check_hostname) == (ssl.CERT_REQUIRED, True)
    expected = ssl.create_default_context(cafile=certifi.where()).get_ca_certs()
    assert len(public.get_ca_certs()) == len(expected) > 100  # certifi's public CAs
    company = aiohttp_ssl(_settings(ca_bundle=make_certificates(tmp_path).ca_file))
    assert isinstance(company, ssl.SSLContext)
    ((subject,),) = [cert["subject"] for cert in company.get_ca_certs()]
    assert subject == (("commonName", "Opus provider test CA"),)


def test_a_ca_bundle_is_loaded_once_per_version_of_the_file(tmp_path):
    import os

    from airflow_provider_opus.transport import aiohttp_ssl
    from tests.support.tls import make_certificates

    settings = _settings(ca_bundle=make_certificates(tmp_path).ca_file)
    first = aiohttp_ssl(settings)
    assert aiohttp_ssl(settings) is first  # a new session costs no reload in the triggerer's loop
    (tmp_path / "new").mkdir()
    replacement = make_certificates(tmp_path / "new").ca_file
    os.replace(replacement, settings.ca_bundle)  # the CA rotated
    stat = os.stat(settings.ca_bundle)
    os.utime(settings.ca_bundle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert aiohttp_ssl(settings) is not first


def test_a_proxy_error_is_not_sent_only_when_the_proxy_was_not_reached_or_refused_the_tunnel():
    # A plain-http proxy that forwarded the request and then dropped the connection was read as "not sent":
    # initiate was retried and billed four jobs (#20 item 3).
    refused = aiohttp.ClientProxyConnectionError(_key("proxy"), ConnectionRefusedError(111, "refused"))
    info = aiohttp.RequestInfo(URL("https://opus.test/job/initiate"), "POST", {}, None)
    tunnel = aiohttp.ClientHttpProxyError(info, (), status=502, message="Bad Gateway")
    dropped = aiohttp.ServerDisconnectedError()
    errors = [transport_error("POST", "/job/initiate", exc) for exc in (refused, tunnel, dropped)]
    assert [error.request_sent for error in errors] == [False, False, True]
    assert errors[0].reason == errors[1].reason
    assert "could not connect through the proxy" in errors[0].reason
    assert errors[2].reason == "connection dropped (ServerDisconnectedError)"


def test_an_untrusted_certificate_is_a_tls_error_that_is_not_retried_in_place(opus_http, sleeps):
    # It was retried through every delay before the clear error, though nothing can change (#20 item 18).
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    opus_http.get(f"{BASE}/job/j/status", exc=aiohttp.ClientConnectorCertificateError(_key("opus.test"), cause))
    with pytest.raises(OpusTLSError, match="TLS verification failed"):
        hook().get_job_status("j")
    assert opus_http.call_count == 1
    assert sleeps.call_count == 0


def test_a_body_that_cannot_be_decoded_is_a_response_error_not_a_dropped_connection(opus_http, sleeps):
    # It was called "connection dropped" and retried (#20 item 13): the same bytes would come again.
    from aiohttp.http_exceptions import ContentEncodingError

    undecodable = aiohttp.ClientPayloadError("Response payload is not completed")
    undecodable.__cause__ = ContentEncodingError("Can not decode content-encoding: gzip")
    opus_http.get(f"{BASE}/job/j/status", exc=undecodable)
    with pytest.raises(OpusResponseError, match="could not be decoded"):
        hook().get_job_status("j")
    assert opus_http.call_count == 1
