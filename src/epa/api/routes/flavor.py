"""/v1/flavors: vCPUs, memory, NUMA needs and PCI requests (``pci_passthrough:alias``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response

from epa.api.auth import DB, Admin
from epa.domain.flavor import Flavor
from epa.inventory import aliases, flavors
from epa.wire.flavor import FlavorList, FlavorOut, flavor_out

router = APIRouter(prefix="/v1/flavors", tags=["flavors"])


@router.post("", status_code=201, response_model=FlavorOut)
def create_flavor(
    db: DB,
    _: Admin,
    body: Any = Body(  # noqa: B008 - FastAPI's way to declare a body
        description='{"name", "vcpus", "memory_mb", "pci_passthrough:alias", "numa_policy", "numa_nodes", '
        '"disk_gb", "image", "pci_group"}'
    ),
) -> FlavorOut:
    flavor = Flavor.parse(body, aliases.known_aliases(db))
    return flavor_out(flavors.create_flavor(db, flavor))


@router.get("", response_model=FlavorList)
def list_flavors(db: DB, _: Admin) -> FlavorList:
    return FlavorList(flavors=[flavor_out(f) for f in flavors.list_flavors(db)])


@router.get("/{name}", response_model=FlavorOut)
def show_flavor(name: str, db: DB, _: Admin) -> FlavorOut:
    return flavor_out(flavors.get_flavor(db, name))


@router.delete("/{name}", status_code=204)
def delete_flavor(name: str, db: DB, _: Admin) -> Response:
    flavors.delete_flavor(db, name)
    return Response(status_code=204)
