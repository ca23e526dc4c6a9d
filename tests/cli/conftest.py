"""CLI tests run against the real API, served by uvicorn in a thread on a SQLite file."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from epa.api.app import create_app
from epa.inventory import Database
from epa.inventory.tokens import ensure_admin_token
from support.served import Served


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test may read the real user's client config or admin token file."""
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    for name in ("EPA_URL", "EPA_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def served(sqlite_db: Database) -> Iterator[Served]:
    admin = ensure_admin_token(sqlite_db)
    assert admin is not None
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(sqlite_db), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", admin)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
