"""/v1/aliases: named device requests in Nova's ``[pci] alias`` syntax."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response
from fastapi.responses import JSONResponse

from epa.api.auth import DB, Admin
from epa.api.schemas.alias import AliasList, AliasOut
from epa.domain.alias import Alias, InvalidAlias, parse_aliases
from epa.inventory import aliases

router = APIRouter(prefix="/v1/aliases", tags=["aliases"])


def alias_json(alias: Alias) -> dict[str, Any]:
    return {
        "name": alias.name,
        "numa_policy": alias.numa_policy.value,
        "device_type": alias.device_type.value if alias.device_type else None,
        "specs": [s.to_json() for s in alias.specs],
    }


@router.post("", status_code=201, response_model=AliasOut)
def create_alias(
    db: DB,
    _: Admin,
    body: Any = Body(  # noqa: B008 - FastAPI's way to declare a body
        description="One Nova alias entry, or a list of entries with the same name (alternatives)."
    ),
) -> JSONResponse:
    parsed = parse_aliases([body])
    if len(parsed) != 1:
        names = ", ".join(sorted(parsed)) or "none"
        raise InvalidAlias(f"alias: one request creates one alias; the entries name {names}")
    alias = aliases.create_alias(db, next(iter(parsed.values())))
    return JSONResponse(alias_json(alias), status_code=201)


@router.get("", response_model=AliasList)
def list_aliases(db: DB, _: Admin) -> JSONResponse:
    return JSONResponse({"aliases": [alias_json(a) for a in aliases.list_aliases(db)]})


@router.get("/{name}", response_model=AliasOut)
def show_alias(name: str, db: DB, _: Admin) -> JSONResponse:
    return JSONResponse(alias_json(aliases.get_alias(db, name)))


@router.delete("/{name}", status_code=204)
def delete_alias(name: str, db: DB, _: Admin) -> Response:
    aliases.delete_alias(db, name)
    return Response(status_code=204)
