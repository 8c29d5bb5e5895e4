"""transport.py: a failed request named, and whether the server can have seen it."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opus.exceptions import OpusResponseError, OpusServerError, OpusTLSError, OpusTransportError
from airflow_provider_opus.transport import MAX_RESPONSE_BYTES, ResponseBody, transport_error
from tests.unit.helpers import BASE, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


def test_transport_error_says_whether_the_request_was_sent(requests_mock):
    requests_mock.post(f"{BASE}/job/initiate", exc=requests.exceptions.ReadTimeout)
    with pytest.raises(OpusTransportError) as info:
        hook().initiate_job("wf", "t", "d")
    assert info.value.request_sent is True
    assert "POST /job/initiate failed (read timeout; Opus may have created the job" in str(info.value)


def _aiohttp_failures():
    import asyncio

    import aiohttp

    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    refused = aiohttp.ClientConnectorError(key, OSError(111, "refused"))
    return [
        (refused, "could not connect", False),
        (aiohttp.ServerTimeoutError("read"), "read timeout", True),
        # aiohttp's total timeout: the deadline of the whole call ran out
        (asyncio.TimeoutError(), "the response took longer than 2 s", True),
        (aiohttp.ServerDisconnectedError(), "connection dropped (ServerDisconnectedError)", True),
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


def test_a_requests_connection_error_is_named_by_the_urllib3_error_it_wraps():
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

    refused = requests.exceptions.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused")))
    dropped = requests.exceptions.ConnectionError(ProtocolError("Connection aborted."))
    assert (
        transport_error("POST", "/p", refused).request_sent,
        transport_error("POST", "/p", dropped).request_sent,
    ) == (
        False,
        True,
    )
    assert transport_error("POST", "/p", refused).reason == "could not connect"
    assert transport_error("POST", "/p", dropped).reason == "connection dropped (ConnectionError)"


def test_a_read_timeout_while_the_body_arrives_is_named_as_such():
    from urllib3.exceptions import ReadTimeoutError

    # requests raises it from iter_content as a ConnectionError wrapping urllib3's error itself.
    error = transport_error("GET", "/p", requests.exceptions.ConnectionError(ReadTimeoutError(None, "/p", "timed out")))
    assert (error.reason, error.request_sent) == ("read timeout", True)
    # The blocking hook reads the body with urllib3's read1, which raises urllib3's own errors.
    error = transport_error("GET", "/p", ReadTimeoutError(None, "/p", "timed out"))
    assert (error.reason, error.request_sent) == ("read timeout", True)


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


def test_an_error_answer_over_the_limit_keeps_its_status_and_first_bytes(requests_mock):
    # A 503 is still a 503 (retried), whatever its size: its first bytes serve for the message.
    body = ResponseBody("GET", "/p", 503, str(10 * MAX_RESPONSE_BYTES))
    assert body.wants_more is False
    body = ResponseBody("GET", "/p", 503, None)
    assert body.add(b'{"message": "busy"}' + b" " * MAX_RESPONSE_BYTES) is False
    assert len(body.content) == MAX_RESPONSE_BYTES
    requests_mock.get(f"{BASE}/job/j1/status", status_code=503, content=b" " * (MAX_RESPONSE_BYTES + 10))
    with pytest.raises(OpusServerError):
        hook(retry_limit=0).get_job_status("j1")


def test_a_bad_content_length_is_ignored_and_the_body_counted():
    body = ResponseBody("GET", "/p", 200, "not a number")
    assert body.add(b"{}") is True


# -- proxy and TLS: one rule, in each library's terms ----------------------------------------------


def test_only_a_certificate_verification_failure_is_named_tls_and_unsent():
    import ssl

    from urllib3.exceptions import MaxRetryError
    from urllib3.exceptions import SSLError as Urllib3SSLError

    def requests_ssl_error(cause: Exception) -> requests.exceptions.SSLError:
        return requests.exceptions.SSLError(MaxRetryError(None, "/", Urllib3SSLError(cause)))

    untrusted = transport_error("POST", "/p", requests_ssl_error(ssl.SSLCertVerificationError(1, "verify failed")))
    assert untrusted.request_sent is False
    assert untrusted.reason.startswith("TLS verification failed")
    assert "set the connection's ca_bundle" in untrusted.reason
    # Another TLS error may come after the request went out: it stays a dropped connection, not resent.
    eof = transport_error("POST", "/p", requests_ssl_error(ssl.SSLEOFError(8, "EOF")))
    assert (eof.reason, eof.request_sent) == ("connection dropped (SSLError)", True)


def _settings(**fields):
    from airflow_provider_opus.connection import OpusConnectionSettings

    return OpusConnectionSettings("opus_default", "https://opus.example.com", "key", **fields)


def test_requests_network_gives_the_proxy_and_the_cas():
    from airflow_provider_opus.transport import requests_network

    direct = requests_network(_settings(), "https://opus.example.com/x")
    assert direct == {"proxies": {}, "verify": True}
    proxied = requests_network(_settings(proxy_url="http://p:3128", ca_bundle="/ca.pem"), "https://s.example/u")
    assert proxied == {"proxies": {"http": "http://p:3128", "https": "http://p:3128"}, "verify": "/ca.pem"}
    assert requests_network(_settings(verify_tls=False), "https://opus.example.com/x")["verify"] is False


def test_aiohttp_trusts_what_requests_trusts(tmp_path):
    import ssl

    import certifi

    from airflow_provider_opus.transport import aiohttp_ssl
    from tests.support.tls import make_certificates

    assert aiohttp_ssl(_settings(verify_tls=False)) is False
    public = aiohttp_ssl(_settings())
    assert isinstance(public, ssl.SSLContext)
    assert (public.verify_mode, public.check_hostname) == (ssl.CERT_REQUIRED, True)
    expected = ssl.create_default_context(cafile=certifi.where()).get_ca_certs()
    assert len(public.get_ca_certs()) == len(expected) > 100  # certifi's public CAs, as requests uses
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


def _proxy_error(original: Exception) -> requests.exceptions.ProxyError:
    from urllib3.exceptions import MaxRetryError, ProxyError

    return requests.exceptions.ProxyError(MaxRetryError(None, "/", ProxyError("Unable to connect to proxy", original)))


def test_a_proxy_error_is_not_sent_only_when_the_proxy_was_not_reached_or_refused_the_tunnel():
    # urllib3 says "Unable to connect to proxy" also when a plain-http proxy forwarded the request and then
    # dropped the connection: read as "not sent", initiate was retried and billed four jobs (#20 item 3).
    from http.client import RemoteDisconnected

    from urllib3.exceptions import NewConnectionError

    refused = transport_error("POST", "/job/initiate", _proxy_error(NewConnectionError(None, "refused")))
    tunnel = transport_error("POST", "/job/initiate", _proxy_error(OSError("Tunnel connection failed: 502 Bad")))
    dropped = transport_error("POST", "/job/initiate", _proxy_error(RemoteDisconnected("closed")))
    assert (refused.request_sent, tunnel.request_sent) == (False, False)
    assert dropped.request_sent is True
    assert "after the request was sent to it" in dropped.reason


def test_an_untrusted_certificate_is_a_tls_error_that_is_not_retried_in_place(requests_mock, sleeps):
    # It was retried through every delay before the clear error, though nothing can change (#20 item 18).
    import ssl

    from urllib3.exceptions import MaxRetryError, SSLError

    cause = SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    requests_mock.get(f"{BASE}/job/j/status", exc=requests.exceptions.SSLError(MaxRetryError(None, "/", cause)))
    with pytest.raises(OpusTLSError, match="TLS verification failed"):
        hook().get_job_status("j")
    assert requests_mock.call_count == 1
    assert sleeps.call_count == 0


def test_a_body_that_cannot_be_decoded_is_a_response_error_not_a_dropped_connection(requests_mock, sleeps):
    # It was called "connection dropped" and retried (#20 item 13): the same bytes would come again.
    requests_mock.get(f"{BASE}/job/j/status", exc=requests.exceptions.ContentDecodingError("bad gzip"))
    with pytest.raises(OpusResponseError, match="could not be decoded"):
        hook().get_job_status("j")
    assert requests_mock.call_count == 1
