"""`epa` loads a command's module only when that command runs: the client commands start without the
server's web framework, database layer and numpy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from epa.cli.main import COMMANDS, main

PROBE = """
import sys
from epa.cli.main import main
main({args!r})
heavy = sorted(m for m in ("fastapi", "sqlalchemy", "numpy", "uvicorn", "libvirt") if m in sys.modules)
print("loaded:", ",".join(heavy))
"""


@pytest.mark.parametrize("args", [["server", "list", "--help"], ["host", "--help"], ["alias", "--help"]])
def test_client_commands_do_not_load_the_server_stack(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines()[-1] == "loaded: ", done.stdout


def test_every_command_resolves_and_help_lists_them_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for name in COMMANDS:
        assert f"\n  {name} " in listed, name
    assert main(["no-such-command"]) != 0
    assert "No such command 'no-such-command'" in capsys.readouterr().err
