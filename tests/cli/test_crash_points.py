"""EPA_CRASH_AT: a typo is refused by name before anything starts, and an armed point is announced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from epa.cli.main import main
from epa.crashpoints import ENV, POINTS, armed
from epa.errors import InvalidInput


def test_armed_reads_the_list_and_refuses_an_unknown_point() -> None:
    assert armed({}) == frozenset()
    assert armed({ENV: " claim.after_commit , agent.build.after_define,"}) == {
        "claim.after_commit",
        "agent.build.after_define",
    }
    with pytest.raises(InvalidInput, match=r"unknown crash point\(s\) claim\.after_comit; known: agent\.build"):
        armed({ENV: "claim.after_comit"})
    assert all(name.count(".") >= 1 and description for name, description in POINTS.items())


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["agent", "--server", "http://127.0.0.1:9", "--once"]])
def test_serve_and_agent_refuse_an_unknown_point_without_a_traceback(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV, "release.never")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    code = main([*command, "--data-dir", str(tmp_path)] if command[0] == "serve" else command)
    err = capsys.readouterr().err
    assert code != 0
    assert "EPA_CRASH_AT: unknown crash point(s) release.never" in err and "Traceback" not in err


def test_the_agent_announces_armed_points(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(ENV, "agent.build.after_define")
    main(["agent", "--server", "http://127.0.0.1:9", "--hypervisor", "none", "--once"])
    assert "crash points armed (EPA_CRASH_AT): agent.build.after_define" in capsys.readouterr().err


def test_an_armed_process_passes_other_points_and_dies_by_sigkill_at_its_own() -> None:
    env = dict(os.environ, **{ENV: "claim.before_commit"})
    code = (
        "from epa.crashpoints import crash_point\n"
        "print('before', flush=True)\n"
        "crash_point('claim.after_commit')\n"
        "print('not armed: went on', flush=True)\n"
        "crash_point('claim.before_commit')\n"
        "print('never printed', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.splitlines() == ["before", "not armed: went on"]


def test_an_agent_whose_state_dir_cannot_be_made_says_so_without_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # What the lab met: the default state dir under a read-only home. A file in the way fails the same way.
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["agent", "--server", "http://127.0.0.1:9", "--once", "--state-dir", str(blocker / "state")])
    err = capsys.readouterr().err
    assert code != 0
    assert f"cannot create {blocker / 'state'}" in err and "--state-dir" in err and "Traceback" not in err
