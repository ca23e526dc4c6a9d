"""/v1/flavors: vCPUs, memory, NUMA needs and PCI requests (``pci_passthrough:alias``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response
from fastapi.responses import JSONResponse

from epa.api.auth import DB, Admin
from epa.api.schemas.flavor import FlavorList, FlavorOut
from epa.domain.flavor import Flavor
from epa.inventory import aliases, flavors

router = APIRouter(prefix="/v1/flavors", tags=["flavors"])


@router.post("", status_code=201, response_model=FlavorOut)
def create_flavor(
    db: DB,
    _: Admin,
    body: Any = Body(  # noqa: B008 - FastAPI's way to declare a body
        description='{"name", "vcpus", "memory_mb", "pci_passthrough:alias", "numa_policy", "numa_nodes", '
        '"disk_gb", "image", "pci_group"}'
    ),
) -> JSONResponse:
    flavor = Flavor.parse(body, aliases.known_aliases(db))
    return JSONResponse(flavors.create_flavor(db, flavor).to_json(), status_code=201)


@router.get("", response_model=FlavorList)
def list_flavors(db: DB, _: Admin) -> JSONResponse:
    return JSONResponse({"flavors": [f.to_json() for f in flavors.list_flavors(db)]})


@router.get("/{name}", response_model=FlavorOut)
def show_flavor(name: str, db: DB, _: Admin) -> JSONResponse:
    return JSONResponse(flavors.get_flavor(db, name).to_json())


@router.delete("/{name}", status_code=204)
def delete_flavor(name: str, db: DB, _: Admin) -> Response:
    flavors.delete_flavor(db, name)
    return Response(status_code=204)
