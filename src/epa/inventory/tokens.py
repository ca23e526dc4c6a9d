"""API tokens: random, shown once, stored only as their SHA-256 hash.

A token has 256 bits of randomness, so an unsalted fast hash is enough (nothing to brute-force), and
it lets a request find its token by an indexed lookup instead of trying every stored hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.orm import Session

from epa.errors import Unauthorized
from epa.inventory.db import ADMIN_TOKEN_LOCK, Database
from epa.inventory.records import Principal
from epa.inventory.schema import HostRow, TokenRow, utcnow

__all__ = [
    "Principal",
    "authenticate",
    "create_admin_token",
    "ensure_admin_token",
    "hash_token",
    "new_agent_token",
    "principals",
    "token_digest",
]

_MAX_TOKEN_LENGTH = 256


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token(session: Session, kind: str, host_id: int | None) -> str:
    token = secrets.token_urlsafe(32)
    session.execute(
        insert(TokenRow).values(kind=kind, host_id=host_id, token_hash=hash_token(token), created_at=utcnow())
    )
    return token


def new_agent_token(session: Session, host_id: int) -> str:
    """Replace ``host_id``'s agent token with a new one (inside the caller's transaction)."""
    session.execute(delete(TokenRow).where(TokenRow.kind == "agent", TokenRow.host_id == host_id))
    return _new_token(session, "agent", host_id)


def ensure_admin_token(db: Database) -> str | None:
    """Create the first admin token and return it, or return None when one exists already.

    Serialised across processes, so that API processes starting together create one token."""
    with db.transaction() as session:
        db.lock(session, ADMIN_TOKEN_LOCK)
        exists = session.execute(select(TokenRow.id).where(TokenRow.kind == "admin").limit(1)).first()
        if exists is not None:
            return None
        return _new_token(session, "admin", None)


def create_admin_token(db: Database) -> str:
    """Another admin token (the old ones stay valid)."""
    with db.transaction() as session:
        return _new_token(session, "admin", None)


def token_digest(token: str) -> str:
    """The stored form of ``token``; ``Unauthorized`` if it cannot be a token at all."""
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
        raise Unauthorized("missing or malformed token")
    return hash_token(token)


def principals(connection: Connection, digests: list[str]) -> dict[str, Principal]:
    """Who each of ``digests`` belongs to (unknown ones are absent), in one indexed query (Core, on the
    connection of the caller's transaction)."""
    tokens, hosts = TokenRow.__table__.c, HostRow.__table__.c
    rows = connection.execute(
        select(tokens.kind, tokens.token_hash, hosts.name)
        .outerjoin(HostRow.__table__, hosts.id == tokens.host_id)
        .where(tokens.token_hash.in_(sorted(set(digests))))
    )
    return {r.token_hash: Principal("admin") if r.kind == "admin" else Principal("agent", r.name) for r in rows}


def authenticate(db: Database, token: str) -> Principal:
    """Who ``token`` belongs to; ``Unauthorized`` if nobody (the message never repeats the token)."""
    digest = token_digest(token)
    with db.transaction(readonly=True) as session:
        row = session.execute(
            select(TokenRow.kind, TokenRow.token_hash, HostRow.name)
            .outerjoin(HostRow, HostRow.id == TokenRow.host_id)
            .where(TokenRow.token_hash == digest)
        ).first()
    # The index lookup already matched; compare_digest keeps the final check constant-time anyway.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthorized("unknown token")
    if row.kind == "admin":
        return Principal("admin")
    return Principal("agent", row.name)
