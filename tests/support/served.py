"""The real API served by uvicorn in a thread, for tests that drive it with the CLI or the client."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from epa.api.app import create_app
from epa.api.server import uvicorn_options
from epa.inventory import Database
from epa.inventory.tokens import create_admin_token, ensure_admin_token


@dataclass
class Served:
    url: str
    admin: str


@contextlib.contextmanager
def serve_in_thread(db: Database) -> Iterator[Served]:
    """The real app on ``db`` (with an admin token) under uvicorn in a thread, on a free loopback port."""
    admin = ensure_admin_token(db) or create_admin_token(db)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # The configuration epa serve runs with, on a socket of the test's choosing.
    server = uvicorn.Server(uvicorn.Config(create_app(db), **uvicorn_options("127.0.0.1", 0, log_level="warning")))
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
