"""A real `epa serve` against what a hostile network sends: bodies of 150 MB (with no token, and with a token
past the route's cap), clients that send their headers one line at a time, more connections than the cap;
and the files it leaves. Memory is read from the server process's /proc/PID/status (VmRSS, and VmHWM after
resetting it through /proc/PID/clear_refs): a bound on what a refused body costs, not a timing threshold."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from epa.api.limits import DEFAULT_BODY_LIMIT, INVENTORY_BODY_LIMIT
from support.procs import Processes, start_serve, wait_for

pytestmark = pytest.mark.slow

HOSTILE_BYTES = 150 * 1024 * 1024
CHUNK = 1024 * 1024
# What answering one refused request may cost the server: its buffers, the answer, Python's allocator.
REFUSAL_BUDGET_KB = 4 * 1024
HEADER_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 48


@dataclass
class Served:
    url: str
    port: int
    pid: int
    admin: str
    agent: str
    data: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    procs = Processes()
    data = tmp_path / "data"
    options = ["--header-timeout", str(HEADER_TIMEOUT_S), "--max-connections", str(MAX_CONNECTIONS)]
    old_umask = os.umask(0)  # the files must come out private whatever the umask
    try:
        url = start_serve(procs, tmp_path / "serve.log", dict(os.environ), options, data)
    finally:
        os.umask(old_umask)
    try:
        admin = (data / "admin-token").read_text().strip()
        created = httpx.post(f"{url}/v1/hosts", json={"name": "h1"}, headers={"Authorization": f"Bearer {admin}"})
        assert created.status_code == 201, created.text
        yield Served(url, int(url.rsplit(":", 1)[1]), procs.procs[0].pid, admin, created.json()["agent_token"], data)
    finally:
        procs.stop_all()


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(rest.split()[0])
    return fields


def reset_peak(pid: int) -> None:
    """VmHWM starts again from the current RSS (proc(5): writing 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def send_hostile_body(served: Served, token: str | None, chunked: bool) -> tuple[bytes, int]:
    """PUT 150 MB at the inventory route as fast as the server takes it; (the answer's head, bytes sent)."""
    lines = [
        "PUT /v1/hosts/h1/inventory HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HOSTILE_BYTES}",
    ]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    # JSON that the old server decoded whole and walked for the surrogate escape: the costliest kind.
    payload = (b'{"generation": 0, "devices": [{"tags": {"x": "\\ud83d\\ude00' + b"a" * CHUNK)[:CHUNK]
    frame = f"{len(payload):x}\r\n".encode() + payload + b"\r\n" if chunked else payload
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=30)
    answer: list[bytes] = []
    reader = threading.Thread(target=lambda: answer.append(read_head(sock)))
    sent = 0
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reader.start()
        for _ in range(HOSTILE_BYTES // CHUNK):
            sock.sendall(frame)
            sent += len(payload)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed: what is measured
    finally:
        reader.join(timeout=60)
        sock.close()
    return (answer[0] if answer else b""), sent


def status_of(head: bytes) -> int:
    assert head.startswith(b"HTTP/1.1 "), head[:200]
    return int(head.split()[1])


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_150_mb_body_without_a_token_is_refused_unread(served: Served, chunked: bool) -> None:
    send_hostile_body(served, None, chunked)  # warm up: the first refusal's imports and buffers are not the point
    before = memory_kb(served.pid)
    reset_peak(served.pid)
    head, sent = send_hostile_body(served, None, chunked)
    after = memory_kb(served.pid)
    assert status_of(head) == 401, head
    assert after["VmHWM"] - before["VmRSS"] < REFUSAL_BUDGET_KB, (before, after, sent)
    assert sent < HOSTILE_BYTES  # the connection was closed on it, not drained
    assert httpx.get(f"{served.url}/healthz").status_code == 200


def test_a_150_mb_report_with_a_token_is_refused_by_its_length_unread(served: Served) -> None:
    send_hostile_body(served, served.agent, chunked=False)
    before = memory_kb(served.pid)
    reset_peak(served.pid)
    head, sent = send_hostile_body(served, served.agent, chunked=False)
    after = memory_kb(served.pid)
    assert status_of(head) == 413, head
    assert after["VmHWM"] - before["VmRSS"] < REFUSAL_BUDGET_KB, (before, after, sent)


def test_a_chunked_report_past_the_cap_is_cut_off_at_the_cap(served: Served) -> None:
    """No length to refuse it by: the body is counted as it comes and refused once past the cap, so what the
    server held is bounded by the cap (16 MiB), not by the 150 MB sent."""
    send_hostile_body(served, served.agent, chunked=True)
    before = memory_kb(served.pid)
    reset_peak(served.pid)
    head, sent = send_hostile_body(served, served.agent, chunked=True)
    after = memory_kb(served.pid)
    assert status_of(head) == 413, head
    # The chunks held until the cap, then joined into one bytes object: twice the cap at most, plus slack.
    assert after["VmHWM"] - before["VmRSS"] < 2 * INVENTORY_BODY_LIMIT // 1024 + REFUSAL_BUDGET_KB, (before, after)
    assert sent < HOSTILE_BYTES


def test_413_names_the_limit_and_other_routes_take_the_small_cap(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.admin}"}
    big = httpx.put(f"{served.url}/v1/hosts/h1/inventory", content=b" " * (INVENTORY_BODY_LIMIT + 1), headers=auth)
    assert big.status_code == 413
    assert big.json()["error"] == {
        "code": "payload_too_large",
        "message": f"the request body is larger than this route takes ({INVENTORY_BODY_LIMIT} bytes at most)",
    }
    alias = httpx.post(f"{served.url}/v1/aliases", content=b" " * (DEFAULT_BODY_LIMIT + 1), headers=auth)
    assert alias.status_code == 413
    assert str(DEFAULT_BODY_LIMIT) in alias.json()["error"]["message"]
    unauth = httpx.post(f"{served.url}/v1/aliases", content=b" " * (DEFAULT_BODY_LIMIT + 1))
    assert unauth.status_code == 401  # who is asking comes first


def test_slow_header_clients_are_cut_off_while_healthz_answers(served: Served) -> None:
    slow = [socket.create_connection(("127.0.0.1", served.port), timeout=30) for _ in range(MAX_CONNECTIONS - 8)]
    closed: set[int] = set()
    try:
        for s in slow:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            s.setblocking(False)
        deadline = time.monotonic() + 30 * HEADER_TIMEOUT_S
        answered = 0
        while len(closed) < len(slow):
            assert time.monotonic() < deadline, f"{len(slow) - len(closed)} slow clients still connected"
            assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200
            answered += 1
            for i, s in enumerate(slow):
                if i in closed:
                    continue
                try:
                    s.sendall(b"X-Slow: 1\r\n")  # one more header line, never the end of the head
                    if s.recv(1) == b"":
                        closed.add(i)
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    closed.add(i)
            time.sleep(HEADER_TIMEOUT_S / 4)
        assert answered >= 1
    finally:
        for s in slow:
            s.close()


def test_a_kept_alive_connection_waits_idle_but_not_in_a_head(served: Served) -> None:
    """The head deadline runs from the first byte of each request, not while the connection is idle between."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as s:
        for _ in range(2):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = read_head(s)
            while not answer.endswith(b'{"status":"ok"}'):  # the body, if it came apart from the head
                answer += s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            time.sleep(3 * HEADER_TIMEOUT_S)  # idle for longer than the head deadline: still served after
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # a head that never ends
        deadline = time.monotonic() + 30 * HEADER_TIMEOUT_S
        while s.recv(65536) != b"":  # nothing is answered; the server closes the connection
            assert time.monotonic() < deadline


def test_connections_past_the_cap_are_closed_at_once(served: Served) -> None:
    held = [socket.create_connection(("127.0.0.1", served.port), timeout=30) for _ in range(MAX_CONNECTIONS)]
    try:
        extra = socket.create_connection(("127.0.0.1", served.port), timeout=30)
        with extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert read_head(extra) == b""  # closed without an answer
    finally:
        for s in held:
            s.close()

    def healthy() -> bool | None:
        try:
            return httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200 or None
        except httpx.HTTPError:
            return None

    wait_for("/healthz once the held connections are gone", healthy)


def test_the_data_dir_database_and_token_are_private_whatever_the_umask(served: Served) -> None:
    """The server was started with umask 000; a write made the WAL and its index exist."""
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [served.data, *served.data.iterdir()]}
    assert modes[served.data.name] == 0o700, modes
    for name in ("epa.db", "epa.db-wal", "epa.db-shm", "admin-token"):
        assert modes.get(name) == 0o600, (name, modes)
