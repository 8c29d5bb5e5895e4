"""scripts/demo.py (`make demo`): how it ends. Ctrl+C is how KEEP mode stops, so it is no error there."""

from __future__ import annotations

import signal

import pytest

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
