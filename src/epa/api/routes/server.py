"""/v1/servers and /v1/scheduler/explain: put a server on a host that has its devices, or say why not."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from epa.api.auth import DB, Admin, Caller, may_access_host
from epa.api.limits import CONSOLE_BODY_LIMIT, SERVER_CREATE_BODY_LIMIT, STATE_BODY_LIMIT, body_limit
from epa.api.schemas.server import (
    ConsoleIn,
    ConsoleOut,
    ExplainOut,
    ExplainRequest,
    PortBody,
    ServerCreate,
    ServerList,
    ServerOut,
    ServerState,
)
from epa.domain import cloud_init
from epa.domain.console import MAX_LINES, tail_lines
from epa.domain.port import Port
from epa.domain.server import ServerStatus
from epa.errors import InvalidInput
from epa.inventory import consoles, flavors, images, lifecycle, servers
from epa.inventory.records import iso_utc
from epa.scheduler.request import ServerRequest
from epa.scheduler.scheduler import Explanation, Ranked
from epa.service.scheduling import SchedulingService

router = APIRouter(tags=["servers"])


def scheduling(request: Request) -> SchedulingService:
    service: SchedulingService = request.app.state.scheduling
    return service


Scheduling = Annotated[SchedulingService, Depends(scheduling)]


def _ports(bodies: list[PortBody]) -> list[Port]:
    return [Port.from_json(b.model_dump(exclude_none=True), where=f"ports[{i}]") for i, b in enumerate(bodies)]


def ranked_json(r: Ranked, request: ServerRequest) -> dict[str, Any]:
    p = r.placement
    return {
        "host": p.host,
        "score": round(r.score, 6),
        "holds_image": r.holds_image,
        "host_nodes": list(p.nodes),
        "devices": [
            {"request": request.devices[i].label, "addresses": [str(a) for a in group]}
            for i, group in enumerate(p.devices)
        ],
    }


def explanation_json(request: ServerRequest, why: Explanation, limit: int) -> dict[str, Any]:
    return {
        "request": {
            "vcpus": request.vcpus,
            "memory_mb": request.memory_mb,
            "numa_nodes": request.numa_nodes,
            "devices": [
                {"label": d.label, "count": d.count, "wants": d.describe(), "numa_policy": d.numa_policy.value}
                for d in request.devices
            ],
        },
        "candidates": [ranked_json(r, request) for r in why.ranked[:limit]],
        "rejected": [{"host": r.host, "reason": r.reason} for r in why.rejections],
        "summary": why.summary(),
    }


def _boot(service: SchedulingService, body: ServerCreate) -> dict[str, Any] | None:
    """What the server boots: the image it names, else its flavor's (which must be whole), and its
    cloud-init data, checked here."""
    name = body.image
    if name is None:
        name = flavors.get_flavor(service.db, body.flavor).image
    if name is None:
        if body.ssh_keys or body.user_data is not None:
            raise InvalidInput("image (None): ssh_keys and user_data need an image to boot")
        return None
    image = images.active_image(service.db, name).snapshot()
    return {"image": image, **cloud_init.check(body.ssh_keys, body.user_data)}


# Printable ASCII without spaces, as the IETF Idempotency-Key draft's examples (a UUID fits).
IDEMPOTENCY_KEY = r"^[!-~]{1,64}$"


@router.post("/v1/servers", status_code=201, response_model=ServerOut)
@body_limit(SERVER_CREATE_BODY_LIMIT)
def create_server(
    body: ServerCreate,
    _: Admin,
    service: Scheduling,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY,
            description="Send a create again with the same key (after a lost answer) and get the same server back "
            "(with `Idempotent-Replayed: true`) instead of a second one.",
        ),
    ] = None,
) -> JSONResponse:
    boot = _boot(service, body)
    if idempotency_key is None:
        record = service.create(body.name, body.flavor, _ports(body.ports), boot=boot)
        return JSONResponse(record.to_json(), status_code=201)
    record, replayed = service.create_once(idempotency_key, body.name, body.flavor, _ports(body.ports), boot)
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(record.to_json(), status_code=201, headers=headers)


@router.get("/v1/servers", response_model=ServerList)
def list_servers(
    db: DB, _: Admin, host: str | None = None, status: str | None = None, include_deleted: bool = False
) -> JSONResponse:
    found = servers.list_servers(db, host=host, status=status, include_deleted=include_deleted)
    return JSONResponse({"servers": [s.to_json() for s in found]})


@router.get("/v1/servers/{server_id}", response_model=ServerOut)
def show_server(server_id: str, db: DB, _: Admin) -> JSONResponse:
    return JSONResponse(servers.get_server(db, server_id).to_json())


@router.delete("/v1/servers/{server_id}", status_code=202, response_model=ServerOut)
def delete_server(server_id: str, db: DB, _: Admin, service: Scheduling, force: bool = False) -> JSONResponse:
    """A server on a host goes to ``deleting`` (its agent tears it down, then its devices return);
    one without a host, or with ``force=true`` (the host is gone for good), is released at once."""
    record = lifecycle.request_delete(db, server_id, force=force)
    if record.status is ServerStatus.DELETED:
        service.released(record.host)
    return JSONResponse(record.to_json(), status_code=202)


@router.post("/v1/servers/{server_id}/stop", response_model=ServerOut)
def stop_server(server_id: str, db: DB, _: Admin) -> JSONResponse:
    return JSONResponse(lifecycle.stop(db, server_id).to_json())


@router.post("/v1/servers/{server_id}/start", response_model=ServerOut)
def start_server(server_id: str, db: DB, _: Admin) -> JSONResponse:
    return JSONResponse(lifecycle.start(db, server_id).to_json())


@router.get("/v1/hosts/{name}/servers", response_model=ServerList)
def host_servers(name: str, db: DB, who: Caller) -> JSONResponse:
    """What the host's agent must make real: every server on the host that is not deleted."""
    may_access_host(who, name)
    return JSONResponse({"servers": [s.to_json() for s in servers.servers_on_host(db, name)]})


@router.post("/v1/servers/{server_id}/state", response_model=ServerOut)
@body_limit(STATE_BODY_LIMIT)
def report_state(server_id: str, body: ServerState, db: DB, who: Caller, service: Scheduling) -> JSONResponse:
    """The host's agent reports progress, failure (which releases the devices) or the domain it sees."""
    current = servers.get_server(db, server_id)
    may_access_host(who, current.host or "")
    status = ServerStatus(body.status) if body.status else None
    record = lifecycle.report(db, server_id, status, body.reason, body.domain_uuid, body.domain_state, body.domain_xml)
    if status is ServerStatus.ERROR:
        service.released(record.host)
    return JSONResponse(record.to_json())


@router.post("/v1/servers/{server_id}/released", response_model=ServerOut)
def report_released(server_id: str, db: DB, who: Caller, service: Scheduling) -> JSONResponse:
    """The host's agent destroyed the domain and reset the VFs: the devices go back to the pool."""
    current = servers.get_server(db, server_id)
    may_access_host(who, current.host or "")
    record = lifecycle.teardown_done(db, server_id)
    service.released(record.host)
    return JSONResponse(record.to_json())


@router.put("/v1/servers/{server_id}/console", response_model=ConsoleOut)
@body_limit(CONSOLE_BODY_LIMIT)
def put_console(server_id: str, body: ConsoleIn, db: DB, who: Caller) -> JSONResponse:
    """The host's agent sends the end of the server's serial console (it reaches the API, not the reverse)."""
    current = servers.get_server(db, server_id)
    may_access_host(who, current.host or "")
    record = consoles.put_console(db, server_id, body.text)
    return JSONResponse(_console_json(record, 100))


@router.get("/v1/servers/{server_id}/console", response_model=ConsoleOut)
def get_console(
    server_id: str, db: DB, _: Admin, tail: Annotated[int, Query(ge=1, le=MAX_LINES)] = 100
) -> JSONResponse:
    """The last ``tail`` lines of the server's serial console, control characters escaped."""
    return JSONResponse(_console_json(consoles.get_console(db, server_id), tail))


def _console_json(record: consoles.ConsoleRecord, tail: int) -> dict[str, Any]:
    return {
        "server_id": record.server_id,
        "lines": tail_lines(record.text, tail),
        "updated_at": iso_utc(record.updated_at),
    }


@router.post("/v1/scheduler/explain", response_model=ExplainOut)
def explain(body: ExplainRequest, _: Admin, service: Scheduling) -> JSONResponse:
    boot = {"image": images.active_image(service.db, body.image).snapshot()} if body.image is not None else None
    request, why = service.explain(body.flavor, _ports(body.ports), boot)
    return JSONResponse(explanation_json(request, why, body.limit))
