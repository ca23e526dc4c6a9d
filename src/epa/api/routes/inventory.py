"""PUT /v1/hosts/{name}/inventory: an agent's full report, reconciled in one transaction."""

from __future__ import annotations

from fastapi import APIRouter, Request

from epa.api import offloop
from epa.api.auth import DB, Caller, may_access_host
from epa.api.limits import INVENTORY_BODY_LIMIT, body_limit
from epa.domain.device import PciDevice
from epa.domain.device_spec import ClassifiedDevice
from epa.domain.host import HostReport, NumaCell
from epa.inventory import Database
from epa.inventory.records import ReportOutcome
from epa.inventory.report import apply_report
from epa.wire.inventory import InventoryOutcome, InventoryReport

router = APIRouter(prefix="/v1/hosts", tags=["inventory"])


def to_host_report(body: InventoryReport) -> HostReport:
    """Turn the validated body into domain values; bad fields raise InvalidInput naming them."""
    devices = []
    for i, d in enumerate(body.devices):
        raw = d.model_dump(exclude={"assignable", "tags"})
        raw["netdevs"] = [n.model_dump() for n in d.netdevs] if d.netdevs else None
        device = PciDevice.from_json(raw, where=f"devices[{i}]")
        devices.append(ClassifiedDevice(device, d.assignable, tuple(sorted(d.tags.items()))))
    cells = tuple(NumaCell(c.node, tuple(c.cpus), c.memory_mb, c.socket) for c in body.numa_cells)
    return HostReport(numa_cells=cells, devices=tuple(devices))


def outcome_out(outcome: ReportOutcome) -> InventoryOutcome:
    return InventoryOutcome(
        generation=outcome.generation,
        added=list(outcome.added),
        updated=list(outcome.updated),
        removed=list(outcome.removed),
        vanished_in_use=list(outcome.vanished_in_use),
        unchanged=outcome.unchanged,
    )


def reconcile(db: Database, name: str, raw: bytes) -> InventoryOutcome:
    """Decode, check and reconcile one report (in a worker thread: none of it on the event loop)."""
    body = offloop.parse(raw, InventoryReport)
    return outcome_out(apply_report(db, name, body.generation, to_host_report(body)))


@router.put("/{name}/inventory", response_model=InventoryOutcome, openapi_extra=offloop.request_body(InventoryReport))
@body_limit(INVENTORY_BODY_LIMIT)
async def put_inventory(name: str, request: Request, db: DB, who: Caller) -> InventoryOutcome:
    may_access_host(who, name)
    raw = await request.body()  # under INVENTORY_BODY_LIMIT, counted as it arrives
    return await offloop.run(reconcile, db, name, raw)
