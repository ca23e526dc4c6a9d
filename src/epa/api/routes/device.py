"""/v1/devices: the inventory's devices, filtered and paginated; one device by host and address."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from epa.api.auth import DB, Admin
from epa.domain.address import PciAddress
from epa.domain.device import DevType
from epa.domain.status import DeviceStatus
from epa.inventory import devices
from epa.inventory.records import DeviceRecord
from epa.wire.device import DeviceList, DeviceOut, DevTypeName, StatusName

router = APIRouter(tags=["devices"])


def device_out(r: DeviceRecord) -> DeviceOut:
    """The device's answer, validated against ``DeviceOut`` as it is made."""
    return DeviceOut.model_validate(
        {
            **r.device.to_json(),
            "host": r.host,
            "assignable": r.assignable,
            "tags": dict(r.tags),
            "status": r.status.value,
            "owner": r.owner,
            "vanished": r.vanished,
        }
    )


@router.get("/v1/devices", response_model=DeviceList)
def list_devices(
    db: DB,
    _: Admin,
    host: str | None = None,
    status: StatusName | None = None,
    dev_type: DevTypeName | None = None,
    assignable: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    marker: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    records, next_marker = devices.list_devices(
        db,
        host=host,
        status=DeviceStatus(status) if status else None,
        dev_type=DevType(dev_type) if dev_type else None,
        assignable=assignable,
        limit=limit,
        marker=marker,
    )
    # A page holds up to 10,000 devices. Each is validated as its model is made, and pydantic writes the page's
    # JSON itself: FastAPI's own path (dump, validate again, serialise) cost about four times the old hand-made
    # answer for a full page (1.2 s against 0.3 s, measured for issue 13); this costs about the same as it did.
    page = DeviceList(devices=[device_out(r) for r in records], next_marker=next_marker)
    return Response(page.model_dump_json(by_alias=True), media_type="application/json")


@router.get("/v1/hosts/{name}/devices/{address}", response_model=DeviceOut)
def show_device(name: str, address: str, db: DB, _: Admin) -> DeviceOut:
    return device_out(devices.get_device(db, name, str(PciAddress.parse(address))))
