"""PUT /v1/hosts/{name}/inventory: an agent's full report, reconciled in one transaction."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from epa.api.auth import DB, Caller, may_access_host
from epa.api.schemas.inventory import InventoryOutcome, InventoryReport
from epa.domain.device import PciDevice
from epa.domain.device_spec import ClassifiedDevice
from epa.domain.host import HostReport, NumaCell
from epa.inventory.report import apply_report

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


@router.put("/{name}/inventory", response_model=InventoryOutcome)
def put_inventory(name: str, body: InventoryReport, db: DB, who: Caller) -> JSONResponse:
    may_access_host(who, name)
    outcome = apply_report(db, name, body.generation, to_host_report(body))
    return JSONResponse(outcome.to_json())
