"""/v1/aliases: named device requests in Nova's ``[pci] alias`` syntax."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response

from epa.api.auth import DB, Admin
from epa.domain.alias import InvalidAlias, parse_aliases
from epa.inventory import aliases
from epa.wire.alias import AliasList, AliasOut, alias_out

router = APIRouter(prefix="/v1/aliases", tags=["aliases"])


@router.post("", status_code=201, response_model=AliasOut)
def create_alias(
    db: DB,
    _: Admin,
    body: Any = Body(  # noqa: B008 - FastAPI's way to declare a body
        description="One Nova alias entry, or a list of entries with the same name (alternatives)."
    ),
) -> AliasOut:
    parsed = parse_aliases([body])
    if len(parsed) != 1:
        names = ", ".join(sorted(parsed)) or "none"
        raise InvalidAlias(f"alias: one request creates one alias; the entries name {names}")
    return alias_out(aliases.create_alias(db, next(iter(parsed.values()))))


@router.get("", response_model=AliasList)
def list_aliases(db: DB, _: Admin) -> AliasList:
    return AliasList(aliases=[alias_out(a) for a in aliases.list_aliases(db)])


@router.get("/{name}", response_model=AliasOut)
def show_alias(name: str, db: DB, _: Admin) -> AliasOut:
    return alias_out(aliases.get_alias(db, name))


@router.delete("/{name}", status_code=204)
def delete_alias(name: str, db: DB, _: Admin) -> Response:
    aliases.delete_alias(db, name)
    return Response(status_code=204)
