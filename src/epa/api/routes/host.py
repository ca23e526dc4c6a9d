"""/v1/hosts: create, list, show, enable/disable, the agent's hypervisor state and image cache, rotate the agent
token, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response

from epa.api.auth import DB, Admin, Caller, may_access_host
from epa.inventory import hosts
from epa.inventory.records import HostRecord, iso_utc
from epa.wire.host import (
    AgentToken,
    CachedImagesBody,
    CachedImagesOut,
    HostCreate,
    HostCreated,
    HostList,
    HostOut,
    HostPatch,
    HypervisorBody,
    HypervisorOut,
    NumaCellBody,
)

router = APIRouter(prefix="/v1/hosts", tags=["hosts"])


def host_out(h: HostRecord) -> HostOut:
    """The host's answer. Its hypervisor and image cache are what the agent last said, as stored."""
    return HostOut(
        hypervisor=HypervisorOut.model_validate(h.hypervisor) if h.hypervisor is not None else None,
        images=CachedImagesOut.model_validate(h.images) if h.images is not None else None,
        name=h.name,
        enabled=h.enabled,
        generation=h.generation,
        last_report_at=iso_utc(h.last_report_at),
        numa_cells=[
            NumaCellBody(node=c.node, socket=c.socket, cpus=list(c.cpus), memory_mb=c.memory_mb) for c in h.numa_cells
        ],
        device_counts=dict(h.device_counts),
        device_total=h.device_total,
    )


@router.post("", status_code=201, response_model=HostCreated)
def create_host(body: HostCreate, db: DB, _: Admin) -> HostCreated:
    host, token = hosts.create_host(db, body.name)
    return HostCreated(host=host_out(host), agent_token=token)


@router.get("", response_model=HostList)
def list_hosts(db: DB, _: Admin) -> HostList:
    return HostList(hosts=[host_out(h) for h in hosts.list_hosts(db)])


@router.get("/{name}", response_model=HostOut)
def show_host(name: str, db: DB, who: Caller) -> HostOut:
    may_access_host(who, name)
    return host_out(hosts.get_host(db, name))


@router.patch("/{name}", response_model=HostOut)
def patch_host(name: str, body: HostPatch, db: DB, _: Admin) -> HostOut:
    return host_out(hosts.set_host_enabled(db, name, body.enabled))


@router.put("/{name}/hypervisor", response_model=HostOut)
def put_hypervisor(name: str, body: HypervisorBody, db: DB, who: Caller) -> HostOut:
    """The host's agent says whether it reaches its hypervisor (and why not) and which domain type it uses."""
    may_access_host(who, name)
    return host_out(hosts.set_hypervisor(db, name, body.model_dump()))


@router.put("/{name}/images", response_model=HostOut)
def put_images(name: str, body: CachedImagesBody, db: DB, who: Caller) -> HostOut:
    """The host's agent says which image parts its cache holds (the scheduler prefers hosts holding a server's)."""
    may_access_host(who, name)
    parts = [p.model_dump() for p in body.parts]
    return host_out(hosts.set_images(db, name, parts))


@router.post("/{name}/token", response_model=AgentToken)
def rotate_token(name: str, db: DB, _: Admin) -> AgentToken:
    return AgentToken(agent_token=hosts.rotate_agent_token(db, name))


@router.delete("/{name}", status_code=204)
def delete_host(name: str, db: DB, _: Admin) -> Response:
    hosts.delete_host(db, name)
    return Response(status_code=204)
