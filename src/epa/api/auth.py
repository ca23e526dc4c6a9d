"""Bearer-token authentication: who is calling (admin or a host's agent), and what they may touch."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from epa.errors import Forbidden, Unauthorized
from epa.inventory import Database
from epa.inventory.tokens import Principal, authenticate
from epa.service.servers import require_host


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


# Where the edge (``epa.api.limits.BodyGuard``) leaves the caller it authenticated, in the request's state.
PRINCIPAL = "epa_principal"


def token_of_header(header: str) -> str:
    """The token of an ``Authorization: Bearer`` header's value; ``Unauthorized`` without one."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer TOKEN'")
    return token.strip()


def bearer_token(request: Request) -> str:
    """The token of the request's ``Authorization: Bearer`` header; ``Unauthorized`` without one."""
    return token_of_header(request.headers.get("authorization", ""))


def principal_from_header(db: Database, header: str) -> Principal:
    """The caller named by an ``Authorization`` header's value; ``Unauthorized`` for none or an unknown token."""
    return authenticate(db, token_of_header(header))


def principal(request: Request, db: Annotated[Database, Depends(database)]) -> Principal:
    """The caller. The edge authenticated it already, before reading the body; this finds it again (and
    authenticates here only for an app run without the edge)."""
    found = request.scope.get("state", {}).get(PRINCIPAL)
    if isinstance(found, Principal):
        return found
    return principal_from_header(db, request.headers.get("authorization", ""))


def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if who.kind != "admin":
        raise Forbidden(f"this needs the admin token; the agent token of host {who.host!r} may not do it")
    return who


may_access_host = require_host


DB = Annotated[Database, Depends(database)]
Caller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]
