"""Real processes for the benchmarks: ``epa serve`` on a database and ``epa agent`` for a simulated host,
each logging to a file and stopped (TERM, then KILL) however the benchmark ends, even when it is killed."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from bench.inventory_ingest import free_port

START_DEADLINE_S = 60.0
EPA = (sys.executable, "-m", "epa")


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark dies, even by SIGKILL (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``args`` with stdout and stderr appended to ``log``."""
    with log.open("ab") as out:
        # die_with_parent only calls prctl, which is safe between fork and exec in a threaded process.
        return subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent)  # noqa: PLW1509


def stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """TERM every process still running, then KILL those that do not end within 10 s."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@contextlib.contextmanager
def api_servers(
    database_url: str, data_dir: Path, count: int, env: dict[str, str] | None = None, extra: Sequence[str] = ()
) -> Iterator[tuple[list[str], list[int], str]]:
    """``count`` ``epa serve`` processes on ``database_url`` (URLs, pids, admin token), stopped however the
    block ends. Their logs are ``data_dir/serve-N.log``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        # One after the other: the first migrates and writes the admin token, the others find both.
        for i in range(count):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log = data_dir / f"serve-{i}.log"
            args = [
                *EPA,
                *("serve", "--data-dir", str(data_dir), "--port", str(port), "--database-url", database_url),
                *extra,
            ]
            procs.append(start(args, log, env))
            wait_healthy(procs[-1], url, log)
            urls.append(url)
        yield urls, [p.pid for p in procs], (data_dir / "admin-token").read_text().strip()
    finally:
        stop(procs)


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"epa serve exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"epa serve did not answer within {START_DEADLINE_S:.0f} s:\n{log.read_text()}")
        time.sleep(0.1)
