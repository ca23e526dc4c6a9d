"""The server and scheduler routes' answers, made from what the service returns (their shapes are
``epa.wire.server`` and ``epa.wire.explain``, shared with the client and the agent)."""

from __future__ import annotations

from epa.domain.console import tail_lines
from epa.inventory.consoles import ConsoleRecord
from epa.inventory.records import ServerRecord, iso_utc, port_mac
from epa.scheduler.request import ServerRequest
from epa.scheduler.scheduler import Explanation, Ranked
from epa.wire.explain import Candidate, ExplainOut, Rejected
from epa.wire.server import ConsoleOut, FlavorOfServer, PortOut, ServerCell, ServerDevice, ServerList, ServerOut


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
