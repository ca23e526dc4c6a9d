"""Servers' serial consoles: the end of each, as the host's agent last sent it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from epa.domain.console import MAX_TAIL_BYTES, escape
from epa.errors import NotFound
from epa.inventory.db import Database
from epa.inventory.schema import ServerConsoleRow, ServerRow, utcnow
from epa.inventory.servers import server_row


@dataclass(frozen=True, slots=True)
class ConsoleRecord:
    server_id: str
    text: str
    updated_at: datetime | None


def put_console(db: Database, server_id: str, text: str) -> ConsoleRecord:
    """Keep the last :data:`MAX_TAIL_BYTES` of ``text``, escaped again (never trust a guest, nor its
    host); ``NotFound`` for an unknown server."""
    safe = escape(text)
    encoded = safe.encode("utf-8")
    if len(encoded) > MAX_TAIL_BYTES:
        safe = encoded[-MAX_TAIL_BYTES:].decode("utf-8", errors="ignore")
    now = utcnow()
    with db.transaction() as session:
        server_row(session, server_id)
        row = session.get(ServerConsoleRow, server_id)
        if row is None:
            session.add(ServerConsoleRow(server_id=server_id, text=safe, updated_at=now))
        else:
            row.text, row.updated_at = safe, now
    return ConsoleRecord(server_id, safe, now)


def get_console(db: Database, server_id: str) -> ConsoleRecord:
    """The server's console so far (empty text before its agent sent any)."""
    with db.transaction(readonly=True) as session:
        if session.get(ServerRow, server_id) is None:
            raise NotFound(f"server {server_id!r} does not exist")
        row = session.execute(select(ServerConsoleRow).where(ServerConsoleRow.server_id == server_id)).scalar()
        if row is None:
            return ConsoleRecord(server_id, "", None)
        return ConsoleRecord(server_id, row.text, row.updated_at)
