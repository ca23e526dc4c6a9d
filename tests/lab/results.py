"""What one lab boot recorded (tests/lab/guest/record.py's JSON), for the tests that assert on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


class LabRun:
    """What one lab boot recorded: ``facts`` by name, each phase's seconds, and the guest's output."""

    def __init__(self, out: Path, output: str, elapsed_s: float) -> None:
        self.out = out
        self.output = output
        self.elapsed_s = elapsed_s
        path = out / "scenario.json"
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def logs(self) -> str:
        tails = [f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.out.glob("*.log"))]
        errors = "\n".join(f"== error in {k}\n{v}" for k, v in self.data.get("errors", {}).items())
        return "\n".join([*tails, errors, "== guest output", self.output[-4000:]])

    def fact(self, name: str) -> Any:
        facts = self.data.get("facts", {})
        if name not in facts:
            pytest.fail(f"the lab recorded no {name!r}\n{self.logs()}")
        return facts[name]
