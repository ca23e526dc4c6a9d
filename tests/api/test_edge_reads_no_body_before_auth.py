"""The edge (epa.api.limits) decides before the body is read: the app is driven as uvicorn drives it, with a
``receive`` that counts how much of the body was asked for. FastAPI itself reads and decodes a declared body
before any route dependency (authentication included) runs; these show the order is now the other way."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from epa.api.app import create_app
from epa.api.limits import DEFAULT_BODY_LIMIT, INVENTORY_BODY_LIMIT
from epa.inventory import Database
from epa.inventory.tokens import ensure_admin_token

MIB = 1024 * 1024


class Exchange:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.reads = 0
        self.bytes_read = 0
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.reads += 1
        chunk = self.chunks.pop(0) if self.chunks else b""
        self.bytes_read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def error(self) -> dict[str, str]:
        body = b"".join(m.get("body", b"") for m in self.sent[1:])
        error: dict[str, str] = json.loads(body)["error"]
        return error


def drive(db: Database, method: str, path: str, headers: dict[str, str], chunks: list[bytes]) -> Exchange:
    app = create_app(db)
    exchange = Exchange(chunks)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8700),
        "state": {},
    }
    anyio.run(app, scope, exchange.receive, exchange.send)
    return exchange


@pytest.fixture
def admin(sqlite_db: Database) -> str:
    token = ensure_admin_token(sqlite_db)
    assert token is not None
    return token


@pytest.mark.parametrize("auth", [None, "Bearer not-a-token", "Basic YTpi"])
@pytest.mark.parametrize(("method", "path"), [("PUT", "/v1/hosts/h/inventory"), ("POST", "/v1/aliases")])
def test_no_valid_token_is_401_without_reading_a_byte(
    sqlite_db: Database, auth: str | None, method: str, path: str
) -> None:
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    if auth:
        headers["Authorization"] = auth
    exchange = drive(sqlite_db, method, path, headers, [b"x" * MIB] * 4)
    assert exchange.status == 401
    assert exchange.error["code"] == "unauthorized"
    assert exchange.reads == 0


def test_a_declared_length_past_the_cap_is_413_without_reading_a_byte(sqlite_db: Database, admin: str) -> None:
    headers = {"Authorization": f"Bearer {admin}", "Content-Length": str(DEFAULT_BODY_LIMIT + 1)}
    exchange = drive(sqlite_db, "POST", "/v1/aliases", headers, [b"x" * (DEFAULT_BODY_LIMIT + 1)])
    assert exchange.status == 413
    assert exchange.error["code"] == "payload_too_large"
    assert str(DEFAULT_BODY_LIMIT) in exchange.error["message"]
    assert exchange.reads == 0


def test_an_undeclared_length_is_read_only_until_it_passes_the_cap(sqlite_db: Database, admin: str) -> None:
    headers = {"Authorization": f"Bearer {admin}", "Transfer-Encoding": "chunked"}
    exchange = drive(sqlite_db, "PUT", "/v1/hosts/h/inventory", headers, [b" " * MIB] * 150)
    assert exchange.status == 413
    assert exchange.error["code"] == "payload_too_large"
    assert exchange.bytes_read == INVENTORY_BODY_LIMIT + MIB  # the chunk that passed the cap, then no more


def test_a_body_within_the_cap_reaches_the_route(sqlite_db: Database, admin: str) -> None:
    headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
    body = json.dumps({"name": "qat", "vendor_id": "8086"}).encode()
    exchange = drive(sqlite_db, "POST", "/v1/aliases", headers | {"Content-Length": str(len(body))}, [body])
    assert exchange.status == 201
