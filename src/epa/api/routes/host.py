"""/v1/hosts: create, list, show, enable/disable, the agent's hypervisor state and image cache, rotate the agent
token, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from epa.api.auth import DB, Admin, Caller, may_access_host
from epa.api.schemas.host import (
    AgentToken,
    CachedImagesBody,
    HostCreate,
    HostCreated,
    HostList,
    HostOut,
    HostPatch,
    HypervisorBody,
)
from epa.inventory import hosts

router = APIRouter(prefix="/v1/hosts", tags=["hosts"])


@router.post("", status_code=201, response_model=HostCreated)
def create_host(body: HostCreate, db: DB, _: Admin) -> JSONResponse:
    host, token = hosts.create_host(db, body.name)
    return JSONResponse({"host": host.to_json(), "agent_token": token}, status_code=201)


@router.get("", response_model=HostList)
def list_hosts(db: DB, _: Admin) -> JSONResponse:
    return JSONResponse({"hosts": [h.to_json() for h in hosts.list_hosts(db)]})


@router.get("/{name}", response_model=HostOut)
def show_host(name: str, db: DB, who: Caller) -> JSONResponse:
    may_access_host(who, name)
    return JSONResponse(hosts.get_host(db, name).to_json())


@router.patch("/{name}", response_model=HostOut)
def patch_host(name: str, body: HostPatch, db: DB, _: Admin) -> JSONResponse:
    return JSONResponse(hosts.set_host_enabled(db, name, body.enabled).to_json())


@router.put("/{name}/hypervisor", response_model=HostOut)
def put_hypervisor(name: str, body: HypervisorBody, db: DB, who: Caller) -> JSONResponse:
    """The host's agent says whether it reaches its hypervisor (and why not) and which domain type it uses."""
    may_access_host(who, name)
    return JSONResponse(hosts.set_hypervisor(db, name, body.model_dump()).to_json())


@router.put("/{name}/images", response_model=HostOut)
def put_images(name: str, body: CachedImagesBody, db: DB, who: Caller) -> JSONResponse:
    """The host's agent says which image parts its cache holds (the scheduler prefers hosts holding a server's)."""
    may_access_host(who, name)
    parts = [p.model_dump() for p in body.parts]
    return JSONResponse(hosts.set_images(db, name, parts).to_json())


@router.post("/{name}/token", response_model=AgentToken)
def rotate_token(name: str, db: DB, _: Admin) -> JSONResponse:
    return JSONResponse({"agent_token": hosts.rotate_agent_token(db, name)})


@router.delete("/{name}", status_code=204)
def delete_host(name: str, db: DB, _: Admin) -> Response:
    hosts.delete_host(db, name)
    return Response(status_code=204)
