"""The lab's boot, one per session: it runs one in-guest script, and each test asserts one thing from what
it recorded (tests/lab/guest/record.py). Each phase's time is printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.harness import boot, guest_python
from lab.results import LabRun

BOOT_DEADLINE_S = 2400.0  # a whole in-guest scenario (an L2 boot in it) under TCG on a shared 2-core machine


def run_lab(script: str, tmp: Path) -> LabRun:
    out = tmp / "out"
    result = boot(guest_python(Path(__file__).parent / "guest" / script, str(out)), out, BOOT_DEADLINE_S)
    run = LabRun(out, result.output, result.elapsed_s)
    phases = ", ".join(f"{k} {v}s" for k, v in run.data.get("phases", {}).items())
    SUMMARY.append(f"[lab] {script}: boot and run {result.elapsed_s:.0f}s (exit {result.returncode}); phases: {phases}")
    return run


SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each phase's time, at the end of the run whatever the capture mode."""
    for line in SUMMARY:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabRun:
    """One boot for the whole lab: the main scenario, then the failure modes (a boot costs minutes)."""
    return run_lab("scenario.py", tmp_path_factory.mktemp("lab"))
