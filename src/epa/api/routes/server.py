"""/v1/servers and /v1/scheduler/explain: put a server on a host that has its devices, or say why not."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from epa.api.auth import DB, Admin
from epa.api.schemas.server import ExplainOut, ExplainRequest, PortBody, ServerCreate, ServerList, ServerOut
from epa.domain.port import Port
from epa.inventory import servers
from epa.inventory.claims import release
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


@router.post("/v1/servers", status_code=201, response_model=ServerOut)
def create_server(body: ServerCreate, _: Admin, service: Scheduling) -> JSONResponse:
    record = service.create(body.name, body.flavor, _ports(body.ports))
    return JSONResponse(record.to_json(), status_code=201)


@router.get("/v1/servers", response_model=ServerList)
def list_servers(
    db: DB, _: Admin, host: str | None = None, status: str | None = None, include_deleted: bool = False
) -> JSONResponse:
    found = servers.list_servers(db, host=host, status=status, include_deleted=include_deleted)
    return JSONResponse({"servers": [s.to_json() for s in found]})


@router.get("/v1/servers/{server_id}", response_model=ServerOut)
def show_server(server_id: str, db: DB, _: Admin) -> JSONResponse:
    return JSONResponse(servers.get_server(db, server_id).to_json())


@router.delete("/v1/servers/{server_id}", status_code=204)
def delete_server(server_id: str, db: DB, _: Admin, service: Scheduling) -> Response:
    record = release(db, server_id)
    service.released(record.host)
    return Response(status_code=204)


@router.post("/v1/scheduler/explain", response_model=ExplainOut)
def explain(body: ExplainRequest, _: Admin, service: Scheduling) -> JSONResponse:
    request, why = service.explain(body.flavor, _ports(body.ports))
    return JSONResponse(explanation_json(request, why, body.limit))
