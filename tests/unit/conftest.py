"""Fixtures of the unit tests: the ``opus_default`` connection, tenacity's waits, and ``opus_http``, a fake HTTP
host under aiohttp (``aioresponses``) that both hooks' calls reach instead of the network."""

from __future__ import annotations

import inspect
import json
import re
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest
from aiohttp import ClientResponse, StreamReader
from aiohttp.client_proto import ResponseHandler
from aioresponses import CallbackResult, aioresponses
from multidict import CIMultiDict
from yarl import URL

from tests.support.settings_cache import fresh_connection_settings
from tests.unit.helpers import BASE, KEY

__all__ = ["fresh_connection_settings"]  # autouse: each test reads its own connection


@pytest.fixture
def opus_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """``opus_default`` pointing at the fake host; a module asks for it with ``pytestmark = usefixtures(...)``."""
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "host": BASE, "password": KEY}))


@pytest.fixture
def sleeps(mocker):
    """Record tenacity's waits instead of sleeping."""
    return mocker.patch("tenacity.nap.time.sleep")


class Sent(NamedTuple):
    """A request as aiohttp was asked to send it: the session's headers merged in, ``kwargs`` as passed (``data``
    still the stream it was given), and the ``ClientSession`` it went through."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    kwargs: dict[str, Any]
    session: Any

    @property
    def json(self) -> Any:
        return self.kwargs.get("json")


class _Response(ClientResponse):
    # aioresponses 0.7.9 leaves out the stream_writer that aiohttp 3.14's ClientResponse requires.
    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:
            kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class OpusHTTP(aioresponses):
    """
    ``aioresponses`` that records every request in order and takes answers per method and URL.

    ``get``/``post``/``put(url, [response, ...])`` serves the responses in order, the last one repeating;
    ``get(url, **response)`` always gives one. A response is a dict of ``status_code``, ``json``, ``body`` (str or
    bytes), ``headers`` and ``exc`` (raised instead of answering), or a function of the :class:`Sent` request that
    returns one. A URL matches with any query string; an unregistered one fails as a refused connection.
    """

    def __init__(self) -> None:
        super().__init__()
        self.request_history: list[Sent] = []

    @property
    def call_count(self) -> int:
        return len(self.request_history)

    def get(self, url: str, responses: list | None = None, **response: Any) -> None:
        self._answer("GET", url, responses or [response])

    def post(self, url: str, responses: list | None = None, **response: Any) -> None:
        self._answer("POST", url, responses or [response])

    def put(self, url: str, responses: list | None = None, **response: Any) -> None:
        self._answer("PUT", url, responses or [response])

    def _answer(self, method: str, url: str, responses: list) -> None:
        queue = list(responses)

        def respond(_url: URL, **_: Any) -> CallbackResult:
            spec = queue.pop(0) if len(queue) > 1 else queue[0]
            spec = spec(self.request_history[-1]) if callable(spec) else spec
            if "exc" in spec:
                raise spec["exc"]
            return CallbackResult(
                status=spec.get("status_code", 200),
                body=spec.get("body", ""),
                payload=spec.get("json"),
                headers=spec.get("headers"),
                response_class=_Response,
            )

        pattern = re.compile(re.escape(str(URL(url))) + r"(\?.*)?\Z")
        self.add(pattern, method=method, repeat=True, callback=respond)

    async def _request_mock(self, orig_self: Any, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        headers = orig_self._prepare_headers(kwargs.get("headers"))
        self.request_history.append(Sent(method, orig_self._build_url(url), headers, dict(kwargs), orig_self))
        return await super()._request_mock(orig_self, method, url, *args, **kwargs)


def _body_stream(loop: Any = None) -> StreamReader:
    # aioresponses' own pauses its protocol, which has no parser, past 128 KiB of body: room for any body here.
    return StreamReader(ResponseHandler(loop=loop), limit=2**30, loop=loop)


@pytest.fixture
def opus_http(monkeypatch: pytest.MonkeyPatch):
    """A fake HTTP host for both hooks (:class:`OpusHTTP`): answers what a test registers, refuses anything else."""
    monkeypatch.setattr("aioresponses.core.stream_reader_factory", _body_stream)
    with OpusHTTP() as fake:
        yield fake
