"""scripts/demo.py (`make demo`): how it ends (Ctrl+C stops KEEP mode), the UI link it prints, its sign-in plugin."""

from __future__ import annotations

import signal

import pytest
from packaging.version import Version

from airflow_provider_opus.compat import AIRFLOW_VERSION
from scripts import demo


@pytest.fixture
def quiet_demo(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A Demo that starts nothing; ``outcome`` says what its run does and whether the cleanup left anything."""
    outcome: dict = {"kept_code": None, "left_running": False}

    def run(self: demo.Demo) -> int:
        self.kept_code = outcome["kept_code"]
        raise KeyboardInterrupt

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # main() must not change pytest's handlers
    monkeypatch.setattr(demo.Demo, "run", run)
    monkeypatch.setattr(demo.Demo, "cleanup", lambda self: not outcome["left_running"])
    return outcome


@pytest.mark.parametrize(("kept_code", "left_running", "code"), [(0, False, 0), (1, False, 1), (0, True, 1)])
def test_ctrl_c_in_keep_mode_ends_with_the_runs_outcome(quiet_demo, capsys, kept_code, left_running, code):
    # make printed "make: *** [Makefile:..: demo] Error 130" after "All stopped; nothing left running."
    quiet_demo.update(kept_code=kept_code, left_running=left_running)
    assert demo.main() == code
    assert "Stopping, as asked." in capsys.readouterr().out


def test_ctrl_c_before_the_run_ended_is_an_interruption(quiet_demo, capsys):
    assert demo.main() == 130
    assert "Interrupted." in capsys.readouterr().out


@pytest.mark.parametrize("drops_the_page", [True, False])
def test_the_printed_ui_link_opens_the_run_on_the_first_visit(monkeypatch, drops_the_page):
    # Airflow 3.1 and 3.2 sign a first visitor in and open Home (apache/airflow#67483): the link goes
    # through the demo's sign-in plugin, which opens the page it is given.
    monkeypatch.setattr(demo, "SIGN_IN_DROPS_THE_PAGE", drops_the_page)
    link = demo.ui_link("http://127.0.0.1:8080", "/dags/d/runs/manual__2026-01-01T00:00:00+00:00")
    if drops_the_page:
        assert link == (
            "http://127.0.0.1:8080/opus-demo/sign-in?next=%2Fdags%2Fd%2Fruns%2Fmanual__2026-01-01T00%3A00%3A00%2B00%3A00"
        )
    else:
        assert link == "http://127.0.0.1:8080/dags/d/runs/manual__2026-01-01T00:00:00+00:00"
    assert demo.SIGN_IN_DROPS_THE_PAGE is drops_the_page


def test_only_airflow_before_3_3_gets_the_sign_in_link():
    assert (Version(AIRFLOW_VERSION) < Version("3.3")) == demo.SIGN_IN_DROPS_THE_PAGE


@pytest.mark.parametrize(
    ("next_page", "opened"),
    [
        ("/dags/d/runs/manual__2026-01-01T00:00:00+00:00", "/dags/d/runs/manual__2026-01-01T00:00:00+00:00"),
        ("/connections", "/connections"),
        ("https://elsewhere.example/", "/"),
        ("//elsewhere.example/", "/"),
    ],
)
def test_the_sign_in_plugin_sets_the_token_and_opens_only_a_page_of_this_server(monkeypatch, next_page, opened):
    from airflow.api_fastapi.auth.managers.simple.services.login import SimpleAuthManagerLogin
    from fastapi.testclient import TestClient

    from scripts import demo_sign_in

    monkeypatch.setattr(SimpleAuthManagerLogin, "create_token_all_admins", staticmethod(lambda: "the-token"))
    client = TestClient(demo_sign_in.app, base_url="http://127.0.0.1:8080")
    response = client.get("/sign-in", params={"next": next_page}, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == opened
    assert response.cookies["_token"] == "the-token"
    assert demo_sign_in.OpusDemoSignIn.fastapi_apps[0]["url_prefix"] == "/opus-demo"
