"""Bodies of the server and scheduler routes, and the answers made from what the service returns (the
server's own shape is ``epa.wire.server``, shared with the client and the agent)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from epa.domain.console import tail_lines
from epa.inventory.consoles import ConsoleRecord
from epa.inventory.records import ServerRecord, iso_utc, port_mac
from epa.scheduler.request import ServerRequest
from epa.scheduler.scheduler import Explanation, Ranked
from epa.wire.host import HOST_NAME
from epa.wire.server import (
    FlavorOfServer,
    PortIn,
    PortOut,
    ServerCell,
    ServerDevice,
    ServerList,
    ServerOut,
)

__all__ = ["PortIn", "ServerList", "ServerOut"]


class ServerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=HOST_NAME)
    flavor: str = Field(pattern=HOST_NAME)
    ports: list[PortIn] = Field(default_factory=list, max_length=32)
    image: str | None = Field(default=None, pattern=HOST_NAME, description="The image the server boots.")
    ssh_keys: list[Annotated[str, Field(max_length=8192)]] = Field(
        default_factory=list, max_length=16, description="OpenSSH public keys for the guest's default user."
    )
    user_data: str | None = Field(
        default=None, max_length=65536, description="cloud-init user-data (NoCloud seed), at most 64 KiB."
    )


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    flavor: str = Field(pattern=HOST_NAME)
    ports: list[PortIn] = Field(default_factory=list, max_length=32)
    limit: int = Field(default=20, ge=1, le=1000, description="Ranked candidates to return.")
    image: str | None = Field(default=None, pattern=HOST_NAME, description="The image the server would boot.")


class ServerState(BaseModel):
    """What a host's agent reports about a server."""

    model_config = ConfigDict(extra="forbid", strict=True)
    status: Literal["building", "active", "stopped", "error"] | None = None
    reason: str | None = Field(default=None, max_length=4096)
    domain_uuid: str | None = Field(default=None, max_length=36)
    domain_state: str | None = Field(default=None, max_length=32)
    domain_xml: str | None = Field(default=None, max_length=1_000_000)


class Candidate(BaseModel):
    host: str
    score: float
    host_nodes: list[int]
    devices: list[dict[str, Any]]
    holds_image: bool = Field(description="Whether the host's image cache holds the image (a weigher term).")


class Rejected(BaseModel):
    host: str
    reason: str


class ExplainOut(BaseModel):
    request: dict[str, Any]
    candidates: list[Candidate]
    rejected: list[Rejected]
    summary: str


class ConsoleIn(BaseModel):
    """What a host's agent sends of a server's console: its end, already escaped (escaped again here)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    text: str = Field(max_length=256 * 1024)


class ConsoleOut(BaseModel):
    server_id: str
    lines: list[str]
    updated_at: str | None


def server_out(s: ServerRecord) -> ServerOut:
    boot = s.boot or {}
    return ServerOut(
        id=s.id,
        name=s.name,
        status=s.status,
        status_reason=s.status_reason,
        host=s.host,
        host_nodes=list(s.host_nodes),
        flavor=FlavorOfServer.model_validate(s.flavor),
        ports=[
            PortOut(
                physnet=p.physical_network,
                vnic_type=p.vnic_type,
                trusted=p.trusted,
                vlan=p.vlan,
                mac=p.mac or port_mac(s.id, i),
            )
            for i, p in enumerate(s.ports)
        ],
        devices=[
            ServerDevice(
                address=str(d.address), request_index=d.request_index, request_label=d.request_label, port=d.port
            )
            for d in s.devices
        ],
        cells=[ServerCell(node=node, cpus=cpus, memory_mb=memory) for node, cpus, memory in s.cells],
        domain_uuid=s.domain_uuid,
        domain_state=s.domain_state,
        domain_xml=s.domain_xml,
        image=boot.get("image"),
        ssh_keys=list(boot.get("ssh_keys") or ()),
        user_data=boot.get("user_data"),
        created_at=iso_utc(s.created_at) or "",
        updated_at=iso_utc(s.updated_at) or "",
    )


def server_list(found: list[ServerRecord]) -> ServerList:
    return ServerList(servers=[server_out(s) for s in found])


def _candidate(r: Ranked, request: ServerRequest) -> Candidate:
    p = r.placement
    return Candidate(
        host=p.host,
        score=round(r.score, 6),
        holds_image=r.holds_image,
        host_nodes=list(p.nodes),
        devices=[
            {"request": request.devices[i].label, "addresses": [str(a) for a in group]}
            for i, group in enumerate(p.devices)
        ],
    )


def explain_out(request: ServerRequest, why: Explanation, limit: int) -> ExplainOut:
    return ExplainOut(
        request={
            "vcpus": request.vcpus,
            "memory_mb": request.memory_mb,
            "numa_nodes": request.numa_nodes,
            "devices": [
                {"label": d.label, "count": d.count, "wants": d.describe(), "numa_policy": d.numa_policy.value}
                for d in request.devices
            ],
        },
        candidates=[_candidate(r, request) for r in why.ranked[:limit]],
        rejected=[Rejected(host=r.host, reason=r.reason) for r in why.rejections],
        summary=why.summary(),
    )


def console_out(record: ConsoleRecord, tail: int) -> ConsoleOut:
    return ConsoleOut(
        server_id=record.server_id, lines=tail_lines(record.text, tail), updated_at=iso_utc(record.updated_at)
    )
