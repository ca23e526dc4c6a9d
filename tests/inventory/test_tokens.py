"""Tokens: shown once, stored as SHA-256 only, found by hash."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from epa.errors import Unauthorized
from epa.inventory import (
    Database,
    Principal,
    authenticate,
    create_admin_token,
    create_host,
    ensure_admin_token,
)


def stored_hashes(db: Database) -> list[str]:
    with db.engine.connect() as connection:
        return [r[0] for r in connection.execute(text("SELECT token_hash FROM tokens"))]


def test_first_admin_token_once(db: Database) -> None:
    token = ensure_admin_token(db)
    assert token is not None and len(token) >= 43
    assert ensure_admin_token(db) is None
    assert authenticate(db, token) == Principal("admin")
    assert authenticate(db, token).is_admin


def test_tokens_are_stored_as_sha256_only(db: Database) -> None:
    admin = ensure_admin_token(db)
    assert admin is not None
    second = create_admin_token(db)
    _, agent = create_host(db, "h")
    hashes = stored_hashes(db)
    assert sorted(hashes) == sorted(hashlib.sha256(t.encode()).hexdigest() for t in (admin, second, agent))
    with db.engine.connect() as connection:
        dump = repr(connection.execute(text("SELECT * FROM tokens")).all())
    for token in (admin, second, agent):
        assert token not in dump


def test_agent_principal(db: Database) -> None:
    _, token = create_host(db, "nfv-1")
    principal = authenticate(db, token)
    assert principal == Principal("agent", "nfv-1")
    assert principal.may_act_for("nfv-1") and not principal.may_act_for("nfv-2")
    assert not principal.is_admin


@pytest.mark.parametrize("token", ["", "nope", "x" * 10_000])
def test_unknown_tokens(db: Database, token: str) -> None:
    ensure_admin_token(db)
    with pytest.raises(Unauthorized) as e:
        authenticate(db, token)
    assert token[:8] not in str(e.value) or not token
