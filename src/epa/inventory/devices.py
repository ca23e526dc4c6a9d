"""Devices: list (filtered, keyset-paginated by host name and address), read, and change status.

``set_device_status`` is the one way a device's status changes outside a report: it checks the
transition and re-settles the device's PF/VF family in the same transaction."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sqlalchemy import or_, select, tuple_, update

from epa.domain.address import PciAddress
from epa.domain.device import DevType
from epa.domain.status import DeviceStatus, InvalidStatusTransition, check_transition
from epa.errors import Conflict, InvalidInput, NotFound
from epa.inventory._rows import COLUMNS, settle_host, to_record
from epa.inventory.db import Database
from epa.inventory.hosts import host_id
from epa.inventory.records import DeviceRecord
from epa.inventory.schema import DeviceRow, HostRow, utcnow

MAX_LIMIT = 10_000
_S = DeviceStatus


def _encode_marker(host: str, address: str) -> str:
    raw = json.dumps([host, address], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_marker(marker: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4))
        host, address = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as e:
        raise InvalidInput(f"marker ({marker!r}) is not a marker this server returned") from e
    if not isinstance(host, str) or not isinstance(address, str):
        raise InvalidInput(f"marker ({marker!r}) is not a marker this server returned")
    return host, address


def list_devices(
    db: Database,
    host: str | None = None,
    status: DeviceStatus | None = None,
    dev_type: DevType | None = None,
    assignable: bool | None = None,
    limit: int = 1000,
    marker: str | None = None,
) -> tuple[list[DeviceRecord], str | None]:
    """One page of devices ordered by (host name, address), and the marker of the next page (None
    on the last). An unknown host gives an empty page, like any filter that matches nothing."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit ({limit!r}) must be an integer in 1..{MAX_LIMIT}")
    query = select(HostRow.name, *COLUMNS).join(HostRow, HostRow.id == DeviceRow.host_id)
    if host is not None:
        query = query.where(HostRow.name == host)
    if status is not None:
        query = query.where(DeviceRow.status == DeviceStatus(status).value)
    if dev_type is not None:
        query = query.where(DeviceRow.dev_type == DevType(dev_type).value)
    if assignable is not None:
        query = query.where(DeviceRow.assignable == assignable)
    if marker is not None:
        after_host, after_address = _decode_marker(marker)
        query = query.where(tuple_(HostRow.name, DeviceRow.address) > tuple_(after_host, after_address))
    # One row more than asked tells whether there is a next page without a COUNT.
    query = query.order_by(HostRow.name, DeviceRow.address).limit(limit + 1)
    with db.transaction(readonly=True) as session:
        rows = session.execute(query).mappings().all()
    page = [to_record(r["name"], r) for r in rows[:limit]]
    next_marker = None
    if len(rows) > limit:
        last = page[-1]
        next_marker = _encode_marker(last.host, str(last.device.address))
    return page, next_marker


def _address(address: PciAddress | str) -> str:
    return str(address if isinstance(address, PciAddress) else PciAddress.parse(address))


def get_device(db: Database, host: str, address: PciAddress | str) -> DeviceRecord:
    canonical = _address(address)
    with db.transaction(readonly=True) as session:
        hid = host_id(session, host)
        row = (
            session.execute(select(*COLUMNS).where(DeviceRow.host_id == hid, DeviceRow.address == canonical))
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"host {host!r} has no device {canonical}")
    return to_record(host, row)


def set_device_status(
    db: Database,
    host: str,
    address: PciAddress | str,
    new_status: DeviceStatus,
    owner: str | None = None,
) -> DeviceRecord:
    """Move a device to ``available``, ``claimed`` or ``allocated`` and re-settle its family.

    ``unavailable`` and ``removed`` are derived (from the family and from reports), never set here.
    Releasing a device that vanished from its host makes it ``removed`` rather than ``available``.
    An in-use status needs an ``owner`` (kept from the claim when None); another owner is a Conflict."""
    new_status = DeviceStatus(new_status)
    canonical = _address(address)
    if new_status not in (_S.AVAILABLE, _S.CLAIMED, _S.ALLOCATED):
        raise InvalidStatusTransition(f"device {canonical}: status {new_status.value} is derived, it cannot be set")
    with db.transaction() as session:
        hid = host_id(session, host, for_update=True)
        target = (
            session.execute(select(*COLUMNS).where(DeviceRow.host_id == hid, DeviceRow.address == canonical))
            .mappings()
            .first()
        )
        if target is None:
            raise NotFound(f"host {host!r} has no device {canonical}")
        old = _S(target["status"])
        if old is _S.REMOVED:
            # Only the host's own report can say the device is back.
            raise InvalidStatusTransition(f"device {canonical} on host {host!r} is removed")
        check_transition(canonical, old, new_status)
        if new_status.in_use and not target["assignable"]:
            raise Conflict(f"device {canonical} on host {host!r} is not assignable (no device_spec matches)")
        if old.in_use and new_status.in_use and owner is not None and owner != target["owner"]:
            # claimed -> allocated must stay with the same server; anything else is a double claim.
            raise Conflict(f"device {canonical} on host {host!r} is {old.value} by {target['owner']}")
        if new_status.in_use:
            owner = owner or target["owner"]
            if not owner:
                raise InvalidInput(f"device {canonical}: owner is required to make it {new_status.value}")
        pf = target["parent_addr"] if target["dev_type"] == DevType.VF.value else canonical
        family = [dict(target)]
        if pf is not None:
            family = [
                dict(r)
                for r in session.execute(
                    select(*COLUMNS).where(
                        DeviceRow.host_id == hid, or_(DeviceRow.address == pf, DeviceRow.parent_addr == pf)
                    )
                ).mappings()
            ]
        statuses = {r["address"]: _S(r["status"]) for r in family}
        statuses[canonical] = new_status
        if new_status is _S.AVAILABLE and target["vanished"]:
            # Released while gone from the host: it goes on through available to removed.
            check_transition(canonical, _S.AVAILABLE, _S.REMOVED)
            statuses[canonical] = _S.REMOVED
        final = {**statuses, **settle_host(family, statuses, strict=True)}
        now = utcnow()
        result = dict(target)
        result.update(
            status=final[canonical].value,
            owner=owner if new_status.in_use else None,
            vanished=target["vanished"] and new_status.in_use,
        )
        params: list[dict[str, Any]] = [
            {k: result[k] for k in ("id", "status", "owner", "vanished")} | {"updated_at": now}
        ]
        params += [
            {"id": r["id"], "status": final[r["address"]].value, "updated_at": now}
            for r in family
            if r["address"] != canonical and final[r["address"]].value != r["status"]
        ]
        # Two statements because a bulk UPDATE by primary key wants one set of keys per batch.
        session.execute(update(DeviceRow), params[:1])
        if params[1:]:
            session.execute(update(DeviceRow), params[1:])
    return to_record(host, result)
