"""connection.py: the settings read from the Opus connection (base URL, timeout, key), seen through OpusHook."""

from __future__ import annotations

import json
import os

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_opus.exceptions import OpusConnectionConfigError
from airflow_provider_opus.hooks.opus import OpusHook
from tests.unit.helpers import KEY

pytestmark = pytest.mark.usefixtures("opus_connection")


@pytest.mark.parametrize(
    ("conn", "expected_url"),
    [
        ({"conn_type": "opus", "password": KEY}, "https://operator.opus.com"),
        ({"conn_type": "opus", "host": "http://127.0.0.1:8765/", "password": KEY}, "http://127.0.0.1:8765"),
        ({"conn_type": "opus", "host": "opus.internal", "password": KEY}, "https://opus.internal"),
        (
            {"conn_type": "opus", "host": "opus.internal", "port": 8443, "password": KEY},
            "https://opus.internal:8443",
        ),
    ],
)
def test_base_url_from_connection(monkeypatch, conn, expected_url):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    settings = OpusHook().settings
    assert settings.base_url == expected_url
    assert settings.timeout == 30.0
    assert KEY not in repr(settings)


def test_timeout_from_connection_extra_and_override(monkeypatch):
    conn = {"conn_type": "opus", "password": KEY, "extra": {"timeout": 12}}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    assert OpusHook().settings.timeout == 12
    assert OpusHook(timeout=3).settings.timeout == 3


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        ({"conn_type": "opus"}, "has no service key: set its password"),
        ({"conn_type": "opus", "host": "ftp://x", "password": KEY}, r"is not an http\(s\) URL"),
        (
            {"conn_type": "opus", "password": KEY, "extra": {"timeout": "soon"}},
            "timeout must be a positive number",
        ),
        (
            {"conn_type": "opus", "password": KEY, "extra": {"timeout": 0}},
            "timeout must be a positive number",
        ),
    ],
)
def test_bad_connection_fails_without_retries(monkeypatch, opus_http, conn, message):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    with pytest.raises(OpusConnectionConfigError, match=message) as info:
        OpusHook().get_job_status("j1")
    assert isinstance(info.value, AirflowFailException)
    assert "opus_default" in str(info.value)
    assert opus_http.call_count == 0


@pytest.mark.parametrize("timeout", ["inf", "Infinity", "-inf", "nan", 1e300, 3600.5])
def test_timeout_must_be_finite_and_at_most_an_hour(monkeypatch, opus_http, timeout):
    conn = {"conn_type": "opus", "password": KEY, "extra": {"timeout": timeout}}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    with pytest.raises(OpusConnectionConfigError, match=r"timeout must be a positive number of seconds up to 3600"):
        OpusHook().get_job_status("j1")
    assert opus_http.call_count == 0
    with pytest.raises(OpusConnectionConfigError, match="up to 3600"):
        _ = OpusHook(timeout=float("inf")).settings


def test_an_hour_is_the_longest_timeout(monkeypatch):
    conn = {"conn_type": "opus", "password": KEY, "extra": {"timeout": 3600}}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    assert OpusHook().settings.timeout == 3600


@pytest.mark.parametrize("pasted", [KEY + "\n", f"  {KEY}  ", f"\t{KEY}\r\n", f"\u00a0{KEY}"])
def test_key_is_trimmed_of_surrounding_whitespace(monkeypatch, pasted):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "password": pasted}))
    settings = OpusHook().settings
    assert settings.service_key == KEY
    assert settings.api_headers["x-service-key"] == KEY


@pytest.mark.parametrize(
    ("key", "position"),
    [(KEY[:4] + "\n" + KEY[4:], 5), (KEY + "\x00x", 29), (KEY[:2] + "\u2019" + KEY[2:], 3), ("\x7f" + KEY, 1)],
)
def test_key_with_a_control_or_non_ascii_character_is_refused_without_echoing_it(monkeypatch, opus_http, key, position):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "password": key}))
    with pytest.raises(OpusConnectionConfigError) as info:
        OpusHook().get_job_status("j1")
    message = str(info.value)
    assert f"the service key has a control or non-ASCII character at position {position} of" in message
    assert "paste the key again" in message
    assert KEY[:4] not in message and KEY[4:] not in message
    assert opus_http.call_count == 0


def test_a_key_of_only_whitespace_is_no_key(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "password": " \n"}))
    with pytest.raises(OpusConnectionConfigError, match="has no service key"):
        _ = OpusHook().settings


# -- proxy and TLS settings (issue #11 D) ----------------------------------------------------------

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy_environment(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def settings_of(monkeypatch, **extra):
    conn = {"conn_type": "opus", "host": "https://opus.example.com", "password": KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps(conn))
    return OpusHook().settings


@pytest.mark.usefixtures("no_proxy_environment")
def test_network_defaults_are_direct_and_verified(monkeypatch):
    settings = settings_of(monkeypatch)
    assert settings.proxy_for("https://opus.example.com/job/x/status") is None
    assert (settings.ca_bundle, settings.verify_tls, settings.tls_verify) == (None, True, True)


@pytest.mark.usefixtures("no_proxy_environment")
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://proxy.corp:3128", "http://proxy.corp:3128"),
        ("  https://proxy.corp:3129/ ", "https://proxy.corp:3129"),
        ("proxy.corp:3128", "http://proxy.corp:3128"),  # no scheme: http, as requests and curl take it
        ("http://user:p%40ss@proxy.corp:3128", "http://user:p%40ss@proxy.corp:3128"),
    ],
)
def test_proxy_url_is_used_for_every_url(monkeypatch, given, expected):
    monkeypatch.setenv("HTTPS_PROXY", "http://other:1")
    monkeypatch.setenv("NO_PROXY", "*")  # the connection's proxy_url wins over the whole environment
    settings = settings_of(monkeypatch, proxy_url=given)
    for url in ("https://opus.example.com/job/initiate", "http://storage.example.net/upload/t?X-Amz-Signature=s"):
        assert settings.proxy_for(url) == expected
    assert "p%40ss" not in repr(settings)


@pytest.mark.usefixtures("no_proxy_environment")
@pytest.mark.parametrize(
    "bad",
    [
        "socks5://proxy.corp:1080",
        "http://",
        "http://proxy.corp:port",
        "http://proxy.corp:99999",
        "http://proxy.corp:3128/some/path",
        "http://pro xy.corp:3128",
        "ftp://user:topsecret@proxy.corp",
        "http://user:topsecret@proxy.corp:notaport",
        42,
    ],
)
def test_a_bad_proxy_url_is_refused_naming_the_field_without_credentials(monkeypatch, opus_http, bad):
    with pytest.raises(OpusConnectionConfigError, match=r"proxy_url .* is not an http\(s\) proxy URL") as info:
        settings_of(monkeypatch, proxy_url=bad)
    message = str(info.value)
    assert "'opus_default'" in message
    assert "http://proxy.example.com:3128" in message  # the fix: what a proxy URL looks like
    assert "topsecret" not in message
    assert opus_http.call_count == 0


@pytest.mark.usefixtures("no_proxy_environment")
@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "http_proxy"])
def test_a_bad_proxy_in_the_environment_names_the_variable(monkeypatch, variable):
    monkeypatch.setenv(variable, "socks5h://user:topsecret@proxy.corp:1080")
    with pytest.raises(OpusConnectionConfigError, match=rf"{variable.upper()} in the environment") as info:
        settings_of(monkeypatch)
    assert "topsecret" not in str(info.value)
    assert "set the connection's proxy_url" in str(info.value)


@pytest.mark.usefixtures("no_proxy_environment")
def test_environment_proxies_apply_by_scheme(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy:3128")
    monkeypatch.setenv("HTTP_PROXY", "plain-proxy:8080")
    settings = settings_of(monkeypatch)
    assert settings.proxy_for("https://opus.example.com/x") == "http://secure-proxy:3128"
    assert settings.proxy_for("http://storage.example.net/x") == "http://plain-proxy:8080"
    assert "secure-proxy" not in repr(settings)


@pytest.mark.usefixtures("no_proxy_environment")
def test_lower_case_proxy_variables_win(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:1")
    monkeypatch.setenv("https_proxy", "http://lower:2")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "elsewhere.example")
    assert settings_of(monkeypatch).proxy_for("https://opus.example.com/x") == "http://lower:2"


@pytest.mark.usefixtures("no_proxy_environment")
@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("example.com", "https://opus.example.com/x", True),
        (".example.com", "https://opus.example.com/x", True),
        ("*.example.com", "https://opus.example.com/x", True),
        ("example.com", "https://example.com/x", True),
        ("EXAMPLE.COM", "https://Opus.Example.Com/x", True),
        ("example.com", "https://badexample.com/x", False),
        ("opus.example.com:443", "https://opus.example.com/x", True),
        ("opus.example.com:8443", "https://opus.example.com/x", False),
        ("opus.example.com:8443", "https://opus.example.com:8443/x", True),
        ("10.0.0.0/8", "https://10.1.2.3/x", True),
        ("10.0.0.0/8", "https://11.1.2.3/x", False),
        ("10.1.2.3", "https://10.1.2.3:9000/x", True),
        ("::1", "https://[::1]:9000/x", True),
        ("[::1]:9000", "https://[::1]:9000/x", True),
        ("fd00::/8", "https://[fd12::1]/x", True),
        ("fd00::/8", "https://10.1.2.3/x", False),
        ("a.test, b.test ,c.test", "https://b.test/x", True),
        ("a.test b.test", "https://b.test/x", True),
        ("*", "https://anything.example/x", True),
        ("", "https://opus.example.com/x", False),
    ],
)
def test_no_proxy_matching(monkeypatch, no_proxy, url, bypassed):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    expected = None if bypassed else "http://proxy.corp:3128"
    assert settings_of(monkeypatch).proxy_for(url) == expected


def test_ca_bundle_is_checked_and_used(monkeypatch, tmp_path):
    from tests.support.tls import make_certificates

    ca_file = make_certificates(tmp_path).ca_file
    settings = settings_of(monkeypatch, ca_bundle=f"  {ca_file} ")
    assert settings.ca_bundle == ca_file
    assert settings.tls_verify == ca_file
    monkeypatch.setenv("HOME", str(tmp_path))
    assert settings_of(monkeypatch, ca_bundle="~/ca.pem").ca_bundle == ca_file


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda tmp: str(tmp / "missing.pem"), "does not exist"),
        (lambda tmp: str(tmp), "is a directory"),
        (lambda tmp: _written(tmp / "key.pem", b"-----BEGIN PRIVATE KEY-----\n"), "holds no PEM certificate"),
        (lambda tmp: 7, "must be a file path"),
    ],
)
def test_a_bad_ca_bundle_is_refused_naming_the_field(monkeypatch, opus_http, tmp_path, make, problem):
    with pytest.raises(OpusConnectionConfigError, match=f"ca_bundle .*{problem}") as info:
        settings_of(monkeypatch, ca_bundle=make(tmp_path))
    assert "'opus_default'" in str(info.value)
    assert "PEM file with your CA's certificates" in str(info.value)
    assert opus_http.call_count == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_ca_bundle_is_refused(monkeypatch, tmp_path):
    path = tmp_path / "ca.pem"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    path.chmod(0)
    with pytest.raises(OpusConnectionConfigError, match=r"ca_bundle .* cannot be read"):
        settings_of(monkeypatch, ca_bundle=str(path))


def _written(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (True, True),
        (False, False),
        ("false", False),
        ("No", False),
        ("0", False),
        ("off", False),
        ("TRUE", True),
        ("yes", True),
        (1, True),
        (None, True),
        ("", True),
    ],
)
def test_verify_tls_words(monkeypatch, given, expected):
    settings = settings_of(monkeypatch, verify_tls=given)
    assert settings.verify_tls is expected
    assert settings.tls_verify is expected


def test_verify_tls_must_be_a_yes_or_no(monkeypatch):
    with pytest.raises(OpusConnectionConfigError, match="verify_tls must be true or false, got 'maybe'"):
        settings_of(monkeypatch, verify_tls="maybe")


def test_verify_tls_off_wins_over_the_ca_bundle_and_warns(monkeypatch, tmp_path, caplog):
    from tests.support.tls import make_certificates

    ca_file = make_certificates(tmp_path).ca_file
    with caplog.at_level("WARNING", logger="airflow_provider_opus.connection"):
        settings = settings_of(monkeypatch, ca_bundle=ca_file, verify_tls="false")
    assert settings.tls_verify is False
    assert "'opus_default' has verify_tls off" in caplog.text


# -- what today's Opus asks for: a callback URL, the upload limit --------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        ("", None),
        ("  https://hooks.example.com/opus  ", "https://hooks.example.com/opus"),
        ("http://127.0.0.1:9000/cb", "http://127.0.0.1:9000/cb"),
        ("http://localhost/cb", "http://localhost/cb"),
        ("http://[::1]:8080/cb", "http://[::1]:8080/cb"),
    ],
)
def test_callback_url_is_https_or_loopback_http(monkeypatch, given, expected):
    assert settings_of(monkeypatch, callback_url=given).callback_url == expected


@pytest.mark.parametrize(
    "bad", ["http://hooks.example.com/cb", "hooks.example.com/cb", "ftp://x/y", "https://", "https://a b/", 42]
)
def test_a_bad_callback_url_is_refused_naming_the_field(monkeypatch, bad):
    with pytest.raises(OpusConnectionConfigError, match=r"'opus_default': callback_url .* is not a URL Opus can send"):
        settings_of(monkeypatch, callback_url=bad)


def test_max_upload_bytes_defaults_to_opus_limit_and_is_settable(monkeypatch):
    assert settings_of(monkeypatch).max_upload_bytes == 10 * 1024 * 1024
    assert settings_of(monkeypatch, max_upload_bytes="2048").max_upload_bytes == 2048
    assert settings_of(monkeypatch, max_upload_bytes=4096.0).max_upload_bytes == 4096


@pytest.mark.parametrize("bad", [0, -1, "ten", 1.5, True])
def test_a_bad_max_upload_bytes_is_refused(monkeypatch, bad):
    with pytest.raises(OpusConnectionConfigError, match="max_upload_bytes must be a whole number of bytes above 0"):
        settings_of(monkeypatch, max_upload_bytes=bad)


def test_the_callback_url_is_never_in_the_settings_repr(monkeypatch):
    settings = settings_of(monkeypatch, callback_url="https://hooks.example.com/cb?token=s3cret")
    assert "s3cret" not in repr(settings)


# -- secrets in messages (#20 item 11) ------------------------------------------------------------------------


def _connection(monkeypatch, **fields) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OPUS_DEFAULT", json.dumps({"conn_type": "opus", "password": KEY, **fields}))


@pytest.mark.parametrize(
    "fields",
    [
        {"host": "https://api.opus.example", "extra": {"timeout": KEY}},  # the key typed into the timeout field
        {"extra": {"proxy_url": "http://proxy.example:3128/?token=proxy-token-secret"}},
        {"extra": {"file_hosts": "https://user:files-password@files.opus.com/path"}},
    ],
)
def test_connection_errors_show_no_key_credentials_or_query(monkeypatch, fields):
    _connection(monkeypatch, **fields)
    with pytest.raises(OpusConnectionConfigError) as info:
        OpusHook().settings  # noqa: B018
    message = str(info.value)
    assert KEY not in message and "proxy-token-secret" not in message and "files-password" not in message


def test_connection_tests_success_message_shows_no_credentials_of_the_host(monkeypatch, opus_http):
    _connection(monkeypatch, host="https://admin:host-password@opus.test")
    opus_http.get(
        "https://admin:host-password@opus.test/job/airflow-connection-test/status",
        [{"status_code": 404, "json": {"message": "no job"}}, {"status_code": 401, "json": {"message": "key"}}],
    )
    passed, message = OpusHook().test_connection()
    assert passed, message
    assert "host-password" not in message and "admin" not in message


def test_connection_tests_message_shows_no_key_typed_into_the_host(monkeypatch, opus_http):
    import aiohttp

    _connection(monkeypatch, host=KEY)  # read as https://<key>: a host that cannot be reached
    key = aiohttp.client_reqrep.ConnectionKey(KEY, 443, True, True, None, None, None)
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))
    opus_http.get(f"https://{KEY}/job/airflow-connection-test/status", exc=refused)
    passed, message = OpusHook().test_connection()
    assert not passed and KEY not in message and "***" in message


@pytest.mark.parametrize(
    "host", ["https://evil.example\\@api.opus.com", "https://api.\topus.com", "https://api opus.com/v1"]
)
def test_a_host_the_parsers_read_differently_is_refused(monkeypatch, host):
    # The key goes to the host on every call: aiohttp (yarl) must connect where urlsplit reads it (#20 item 1).
    _connection(monkeypatch, host=host)
    with pytest.raises(OpusConnectionConfigError, match="is not an http\\(s\\) URL"):
        OpusHook().settings  # noqa: B018
