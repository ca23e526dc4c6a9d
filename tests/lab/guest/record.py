"""What an in-guest lab script observes, written as JSON as it goes (a boot that dies half-way still
leaves what it saw): phases with their durations, and named observations the host's tests assert on."""

from __future__ import annotations

import json
import os
import subprocess
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[lab {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


class Record:
    """The JSON file ``path``: ``{"phases": {name: seconds}, "facts": {name: value}, "errors": {phase: text}}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"phases": {}, "facts": {}, "errors": {}}
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def fact(self, name: str, value: Any) -> Any:
        self.data["facts"][name] = value
        self.save()
        return value

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the phase; an exception in it is recorded (with its traceback) and ends the script."""
        say(f"{name} ...")
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.data["errors"][name] = traceback.format_exc()
            raise
        finally:
            self.data["phases"][name] = round(time.monotonic() - started, 1)
            self.save()
            say(f"{name}: {self.data['phases'][name]}s")


def sh(*args: str, check: bool = True, timeout: float = 120.0) -> str:
    """Run a command; its stdout. A failure raises with the command's stderr in the message."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def wait(what: str, probe: Any, deadline_s: float, every_s: float = 1.0) -> Any:
    """Poll ``probe`` until it returns something other than None; raise after ``deadline_s``."""
    started = time.monotonic()
    while True:
        value = probe()
        if value is not None:
            say(f"{what}: after {time.monotonic() - started:.1f}s")
            return value
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"{what}: not within {deadline_s:.0f}s")
        time.sleep(every_s)
