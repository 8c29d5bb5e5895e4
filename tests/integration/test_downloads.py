"""OpusHook.download_file and airflow_provider_opus.downloads: streamed downloads over real loopback HTTP.

A plain file server stands in for hosts the emulator is not (another company's host, a redirecting
CDN); the emulator's own output files are downloaded in test_operators_results.py.
"""

from __future__ import annotations

import gzip
import json
import os
from urllib.parse import quote, unquote

import pytest

from airflow_provider_opus.downloads import MAX_FILE_NAME_CHARS, file_name_for
from airflow_provider_opus.exceptions import (
    OpusAuthError,
    OpusConnectionConfigError,
    OpusInvalidArgumentError,
    OpusNotFoundError,
    OpusResponseError,
    OpusStorageError,
    OpusTransportError,
)
from airflow_provider_opus.hooks.opus import OpusHook
from tests.conftest import SERVICE_KEY
from tests.integration.helpers import LoopbackHTTPServer, QuietHandler

pytestmark = pytest.mark.integration

CONTENT = os.urandom(3 * 1024 * 1024 + 17)
GZIPPED = gzip.compress(b"report line\n" * 10_000)
#: 64 MiB of zeros in about 64 KiB: a small gzip bomb (the review's was 1 MB that wrote 1 GiB).
BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024))


class FileServer(LoopbackHTTPServer):
    """
    Serves ``CONTENT`` at ``/file.pdf``, and records the headers of every request.

    ``/redirect?to=URL`` answers 302 to URL; ``/cut`` promises more bytes than it sends;
    ``/status/N`` answers status N; ``/flaky`` answers 503 once, then the file.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self
        flaky = {"left": 1}

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers.items())))
                if self.path.startswith("/redirect?to="):
                    self._answer(302, b"", {"Location": unquote(self.path.split("=", 1)[1])})
                elif self.path == "/cut":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(CONTENT)))
                    self.end_headers()
                    self.wfile.write(CONTENT[: len(CONTENT) // 2])
                    self.close_connection = True
                elif self.path.startswith("/status/"):
                    self._answer(int(self.path.rsplit("/", 1)[1]), b'{"message": "no"}')
                elif self.path.startswith("/gzip/"):
                    # A .gz object served as S3 and CDNs do: Content-Encoding: gzip, whatever was asked.
                    self._answer(200, GZIPPED, {"Content-Encoding": "gzip", "Content-Type": "application/gzip"})
                elif self.path == "/bomb.gz":
                    self._answer(200, BOMB, {"Content-Encoding": "gzip"})
                elif self.path == "/flaky" and flaky["left"]:
                    flaky["left"] -= 1
                    self._answer(503, b"{}")
                else:
                    self._answer(200, CONTENT)

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve_with(Handler)

    def keys_seen(self) -> list[bool]:
        """Tell, per request, whether it carried the service key."""
        return [any(value == SERVICE_KEY for value in headers.values()) for _, headers in self.requests]


@pytest.fixture
def files():
    with FileServer() as server:
        yield server


def use_connection(monkeypatch, host: str, **extra) -> None:
    conn = {"conn_type": "opus", "host": host, "password": SERVICE_KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))


def leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_a_file_on_the_api_host_is_downloaded_whole_with_the_key(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    written = OpusHook(retry_delay=0.01).download_file(f"{files.url}/file.pdf", tmp_path / "new" / "out.pdf")
    assert written == tmp_path / "new" / "out.pdf"
    assert written.read_bytes() == CONTENT
    assert files.keys_seen() == [True]
    assert leftovers(tmp_path / "new") == ["out.pdf"]  # no probe, no partial file left


def test_the_key_goes_to_listed_file_hosts_only(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, "https://api.opus.example")  # not the file server
    OpusHook().download_file(f"{files.url}/file.pdf", tmp_path / "a.pdf")
    use_connection(monkeypatch, "https://api.opus.example", file_hosts=f"files.opus.example, {files.url}")
    OpusHook().download_file(f"{files.url}/file.pdf", tmp_path / "b.pdf")
    assert files.keys_seen() == [False, True]
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes() == CONTENT


def test_a_redirect_never_carries_the_key(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    OpusHook().download_file(f"{files.url}/redirect?to={files.url}/file.pdf", tmp_path / "out.pdf")
    assert [path for path, _ in files.requests] == ["/redirect?to=" + files.url + "/file.pdf", "/file.pdf"]
    assert files.keys_seen() == [True, False]  # even back to an allowed host
    assert (tmp_path / "out.pdf").read_bytes() == CONTENT


def test_a_cut_download_is_retried_and_never_leaves_a_partial_file(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    with pytest.raises(OpusTransportError, match=r"GET http://127\.0\.0\.1:[0-9]+/cut"):
        OpusHook(retry_limit=2, retry_delay=0.01).download_file(f"{files.url}/cut", tmp_path / "out.pdf")
    assert [path for path, _ in files.requests] == ["/cut"] * 3
    assert leftovers(tmp_path) == []


def test_a_server_error_is_retried(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    OpusHook(retry_delay=0.01).download_file(f"{files.url}/flaky", tmp_path / "out.pdf")
    assert (tmp_path / "out.pdf").read_bytes() == CONTENT
    assert len(files.requests) == 2


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (404, OpusNotFoundError, "output file not found"),
        (401, OpusAuthError, "the file host refused the service key"),
    ],
)
def test_refusals_are_final_and_say_why(files, monkeypatch, tmp_path, status, error, message):
    use_connection(monkeypatch, files.url)
    with pytest.raises(error, match=message) as info:
        OpusHook(retry_delay=0.01).download_file(f"{files.url}/status/{status}", tmp_path / "out.pdf")
    assert SERVICE_KEY not in str(info.value)
    assert len(files.requests) == 1 and leftovers(tmp_path) == []


def test_a_refusal_without_the_key_names_file_hosts(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, "https://api.opus.example")
    with pytest.raises(OpusAuthError, match="add this host to file_hosts"):
        OpusHook().download_file(f"{files.url}/status/403", tmp_path / "out.pdf")


def test_a_redirect_elsewhere_than_http_is_refused(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    with pytest.raises(OpusStorageError, match="a redirect to file:///etc/passwd"):
        OpusHook().download_file(f"{files.url}/redirect?to=file:///etc/passwd", tmp_path / "out.pdf")


def test_a_folder_that_cannot_be_written_fails_before_the_download(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(OpusInvalidArgumentError, match="not-a-folder cannot be written"):
        OpusHook().download_file(f"{files.url}/file.pdf", blocker / "out.pdf")
    assert files.requests == []


@pytest.mark.parametrize("url", ["ftp://host/file", "", None, "/relative/path", "http://[::1/f", "http://h:99999/f"])
def test_a_url_that_is_not_http_is_refused_before_any_request(url, tmp_path):
    # A URL that does not parse raised a bare ValueError (#20 item 13).
    with pytest.raises(OpusInvalidArgumentError, match="is not a plain http\\(s\\) URL"):
        OpusHook().download_file(url, tmp_path / "out.pdf")


@pytest.mark.parametrize("file_hosts", ["ftp://files.opus.com", "https://files.opus.com/path", "a b/c", [1]])
def test_bad_file_hosts_are_a_connection_error(monkeypatch, file_hosts):
    use_connection(monkeypatch, "https://api.opus.example", file_hosts=file_hosts)
    with pytest.raises(OpusConnectionConfigError, match="file_hosts must list hosts"):
        _ = OpusHook().settings


def test_file_names_come_from_the_url_made_safe_and_unique():
    taken: set[str] = set()
    names = [
        file_name_for("https://f/media/output_1.pdf?sig=abc", taken),
        file_name_for("https://g/other/output_1.pdf", taken),
        file_name_for("https://f/media/..%2F..%2Fetc%2Fpasswd", taken),
        file_name_for("https://f/", taken),
        file_name_for("https://f/r%C3%A9sum%C3%A9 final.pdf", taken),
    ]
    assert names == ["output_1.pdf", "output_1-2.pdf", "passwd", "output", "r_sum_final.pdf"]


def test_a_long_file_name_is_shortened_keeping_its_extension_and_stays_unique():
    # A server file name of 230+ characters failed the task with a raw OSError [Errno 36]: the temporary
    # name adds 42 characters to the 255 a file name may have.
    taken: set[str] = set()
    long_a, long_b = "a" * 240 + "-1.pdf", "a" * 240 + "-2.pdf"
    names = [file_name_for(f"https://f/{name}", taken) for name in (long_a, long_b, long_a, long_a)]
    assert all(len(name) <= MAX_FILE_NAME_CHARS and name.endswith(".pdf") for name in names)
    assert len(set(names)) == 4  # two long names that start alike stay two names, and repeats are numbered
    assert names[2] == names[0].removesuffix(".pdf")[: MAX_FILE_NAME_CHARS - 6] + "-2.pdf"
    assert names[3].endswith("-3.pdf")
    assert file_name_for("https://f/" + "b" * 300, set()) == file_name_for("https://f/" + "b" * 300, set())
    odd = file_name_for("https://f/report." + "x" * 300, set())  # no extension to keep: it is all name
    assert len(odd) <= MAX_FILE_NAME_CHARS and odd.startswith("report.xxx")


def test_a_file_with_a_long_name_downloads(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    url = f"{files.url}/{'r' * 240}.pdf"
    written = OpusHook(retry_delay=0.01).download_file(url, tmp_path / file_name_for(url, set()))
    assert written.read_bytes() == CONTENT
    # A name of its own that fits the file system is kept as it is, however long the temporary name would be.
    exact = OpusHook(retry_delay=0.01).download_file(url, tmp_path / ("n" * 250 + ".pdf"))
    assert exact.name == "n" * 250 + ".pdf" and exact.read_bytes() == CONTENT
    assert sorted(os.listdir(tmp_path)) == sorted([written.name, exact.name])  # no partial file left


def test_a_destination_name_the_file_system_cannot_hold_fails_the_task_at_once(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    with pytest.raises(OpusInvalidArgumentError, match=r"its name has 304 bytes, more than the file system allows"):
        OpusHook(retry_delay=0.01).download_file(f"{files.url}/file.pdf", tmp_path / ("n" * 300 + ".pdf"))
    assert leftovers(tmp_path) == []


# -- #20 items 1, 12 and 13 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1\\@{host}/file.pdf",  # urlsplit: the API host; an HTTP library: 127.0.0.1:1
        "http://evil.example@{host}/file.pdf",  # credentials before the host
        "http://{host}/file.pdf\t",
        "http://{host} /file.pdf",
    ],
)
def test_a_url_parsers_read_differently_is_refused_before_any_request(files, monkeypatch, tmp_path, url):
    # download_file("http://EVIL\\@API/files/r.pdf") sent x-service-key to EVIL (#20 item 1).
    use_connection(monkeypatch, files.url)
    hook = OpusHook(retry_delay=0.01)
    bad = url.format(host=files.url.removeprefix("http://"))
    assert not hook.settings.may_send_key_to(bad)
    with pytest.raises(OpusInvalidArgumentError, match="is not a plain http") as info:
        hook.download_file(bad, tmp_path / "out.pdf")
    assert files.requests == []
    assert "evil.example" not in str(info.value)  # credentials are redacted from every message


def test_a_redirect_to_a_url_parsers_read_differently_is_refused(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    target = f"http://127.0.0.1:1\\@{files.url.removeprefix('http://')}/file.pdf"
    with pytest.raises(OpusStorageError, match="a redirect to"):
        OpusHook().download_file(f"{files.url}/redirect?to={quote(target)}", tmp_path / "out.pdf")
    assert len(files.requests) == 1


def test_a_gzip_encoded_file_is_written_as_stored(files, monkeypatch, tmp_path):
    # A .gz served with Content-Encoding: gzip was written decompressed (#20 item 12).
    use_connection(monkeypatch, files.url)
    written = OpusHook().download_file(f"{files.url}/gzip/report.gz", tmp_path / "report.gz")
    assert written.read_bytes() == GZIPPED
    assert files.requests[0][1]["Accept-Encoding"] == "identity"


def test_a_gzip_bomb_writes_its_compressed_bytes_only(files, monkeypatch, tmp_path):
    use_connection(monkeypatch, files.url)
    written = OpusHook().download_file(f"{files.url}/bomb.gz", tmp_path / "bomb.gz")
    assert written.stat().st_size == len(BOMB) < 1024 * 1024


@pytest.mark.parametrize("path", ["/file.pdf", "/cut"])
def test_a_file_over_max_download_bytes_fails_and_leaves_nothing(files, monkeypatch, tmp_path, path):
    # /file.pdf announces its size (refused before a byte is read); the cap also holds while reading.
    use_connection(monkeypatch, files.url, max_download_bytes=1024 * 1024)
    with pytest.raises(OpusResponseError, match="larger than the connection's max_download_bytes"):
        OpusHook(retry_delay=0.01).download_file(f"{files.url}{path}", tmp_path / "out.pdf")
    assert len(files.requests) == 1 and leftovers(tmp_path) == []


def test_a_file_over_max_download_bytes_without_a_length_is_cut_at_the_limit(monkeypatch, tmp_path):
    import asyncio

    from airflow_provider_opus.downloads import raw_chunks

    async def endless():
        while True:
            yield b"x" * 1024 * 1024

    async def drain():
        async for _ in raw_chunks("http://h/f", endless(), 3 * 1024 * 1024):
            pass

    with pytest.raises(OpusResponseError, match="max_download_bytes"):
        asyncio.run(drain())


def test_a_destination_that_is_a_folder_fails_before_any_request(files, monkeypatch, tmp_path):
    # It raised a bare IsADirectoryError, after the whole download (#20 item 13).
    use_connection(monkeypatch, files.url)
    with pytest.raises(OpusInvalidArgumentError, match="is a folder: give the path of the file"):
        OpusHook().download_file(f"{files.url}/file.pdf", tmp_path)
    assert files.requests == []


def test_a_401_after_a_redirect_to_the_api_host_says_the_key_is_not_sent_through_redirects(
    files, monkeypatch, tmp_path
):
    # It told the user to add the API host to file_hosts (#20 item 13).
    use_connection(monkeypatch, files.url)
    with pytest.raises(OpusAuthError, match="never sent through a redirect") as info:
        OpusHook().download_file(f"{files.url}/redirect?to={files.url}/status/401", tmp_path / "out.pdf")
    assert "file_hosts" not in str(info.value)


@pytest.mark.parametrize("file_hosts", ["*.opus.com", "https://*.opus.com", "user:secret@files.opus.com"])
def test_wildcards_and_credentials_in_file_hosts_are_refused(monkeypatch, file_hosts):
    # "*.opus.com" was taken and never matched a host (#20 item 13); a password was echoed (item 11).
    use_connection(monkeypatch, "https://api.opus.example", file_hosts=file_hosts)
    with pytest.raises(OpusConnectionConfigError, match="no wildcards, no credentials") as info:
        OpusHook().settings  # noqa: B018
    assert "secret" not in str(info.value)
