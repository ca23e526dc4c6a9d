"""`epa serve` keeps an idle connection open longer than its HTTP clients keep one for reuse. A server that
closes first races with a client sending its next request on that connection, and the request fails with
"connection reset by peer" without ever being read (the soak, bench/soak.py, met it once in 5,000 creates)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from epa.inventory import Database
from support.served import serve_in_thread

pytestmark = pytest.mark.slow

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body; b"" when the server closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return b""
        if not chunk:
            return b""
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_connection_idle_as_long_as_httpx_may_reuse_it_is_still_served(sqlite_db: Database) -> None:
    # httpx (epa.client, the agent) reuses a connection idle for up to keepalive_expiry seconds.
    client_reuse_s = httpx.Limits().keepalive_expiry
    assert client_reuse_s is not None
    with serve_in_thread(sqlite_db) as served:
        host, port = served.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(REQUEST)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(client_reuse_s + 0.5)
            sock.sendall(REQUEST)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
