"""transport.py: a failed request named, and whether the server can have seen it."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opus.exceptions import OpusTransportError
from tests.unit.helpers import BASE, hook

pytestmark = pytest.mark.usefixtures("opus_connection")


def test_transport_error_says_whether_the_request_was_sent(requests_mock):
    requests_mock.post(f"{BASE}/job/initiate", exc=requests.exceptions.ReadTimeout)
    with pytest.raises(OpusTransportError) as info:
        hook().initiate_job("wf", "t", "d")
    assert info.value.request_sent is True
    assert "POST /job/initiate failed (read timeout)" in str(info.value)
