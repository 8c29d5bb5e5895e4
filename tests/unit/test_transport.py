"""transport.py: a failed request named, and whether the server can have seen it."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opus.exceptions import OpusTransportError
from airflow_provider_opus.transport import transport_error
from tests.unit.helpers import BASE, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


def test_transport_error_says_whether_the_request_was_sent(requests_mock):
    requests_mock.post(f"{BASE}/job/initiate", exc=requests.exceptions.ReadTimeout)
    with pytest.raises(OpusTransportError) as info:
        hook().initiate_job("wf", "t", "d")
    assert info.value.request_sent is True
    assert "POST /job/initiate failed (read timeout)" in str(info.value)


def _aiohttp_failures():
    import asyncio

    import aiohttp

    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    refused = aiohttp.ClientConnectorError(key, OSError(111, "refused"))
    return [
        (refused, "could not connect", False),
        (aiohttp.ServerTimeoutError("read"), "read timeout", True),
        (asyncio.TimeoutError(), "read timeout", True),
        (aiohttp.ServerDisconnectedError(), "connection dropped (ServerDisconnectedError)", True),
        *[
            (getattr(aiohttp, name)("connect"), "could not connect", False)
            for name in ["ConnectionTimeoutError"]
            if hasattr(aiohttp, name)  # aiohttp 3.10+: a ServerTimeoutError that must not read as a read timeout
        ],
    ]


@pytest.mark.parametrize(("exc", "reason", "request_sent"), _aiohttp_failures())
def test_aiohttp_failures_are_named_by_the_same_table(exc, reason, request_sent):
    error = transport_error("GET", "/job/j/status", exc)
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
