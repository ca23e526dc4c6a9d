"""Real processes in tests: start them, wait for them, stop them however the test ends."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

DEADLINE_S = 30.0
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], deadline_s: float = DEADLINE_S) -> T:
    """Poll ``probe`` until it returns something other than None (or fail after ``deadline_s``)."""
    deadline = time.monotonic() + deadline_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None:
            return last
        time.sleep(0.25)
    pytest.fail(f"timed out after {deadline_s}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Processes:
    """Every process a test starts, stopped (TERM, then KILL) however the test ends."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def start_serve(procs: Processes, log: Path, env: dict[str, str], db_args: list[str], data_dir: Path) -> str:
    """Start `epa serve` on a free port with ``db_args`` (``--db FILE`` or ``--database-url URL``) and
    wait until it answers /healthz; returns its URL. The admin token is in ``data_dir/admin-token``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "epa", "serve", *db_args, "--port", str(port), "--data-dir", str(data_dir)]
    wait_healthy(procs.start(args, log, env), url, log)
    return url


def wait_healthy(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Wait until the `epa serve` process ``server`` answers /healthz at ``url``; fail, with its log,
    if it exits first."""

    def healthy() -> bool | None:
        if server.poll() is not None:
            pytest.fail(f"epa serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200 or None
        except httpx.HTTPError:
            return None

    wait_for(f"epa serve ({log.name}) to answer /healthz", healthy)
