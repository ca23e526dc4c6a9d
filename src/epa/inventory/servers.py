"""Servers: record one that no host could take, read one, list them, the ones on a host for its
agent, and move a server through its life (scheduled -> building -> active <-> stopped).

``NewServer`` is what a server is made from; ``claims.claim`` records one on a host and
``claims.release`` gives back what it holds. Reading servers costs three queries however many
there are: the servers with their host names, their claimed devices, and the CPU and memory they
hold per host NUMA node."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from epa.domain.address import PciAddress
from epa.domain.flavor import PCI_ALIAS_KEY, Flavor, check_name
from epa.domain.port import Port, VnicType
from epa.domain.server import ClaimedDevice, HostName, ServerId, ServerStatus, check_server_transition
from epa.domain.status import DeviceStatus
from epa.errors import Conflict, NotFound
from epa.inventory.db import Database
from epa.inventory.hosts import host_id
from epa.inventory.records import ServerRecord
from epa.inventory.schema import ClaimRow, DeviceRow, HostRow, ServerCellRow, ServerRow, utcnow

_V = ServerStatus


@dataclass(frozen=True, slots=True)
class NewServer:
    """What a server is made from. The name is checked when the server is recorded."""

    name: str
    flavor: Flavor
    ports: tuple[Port, ...] = ()
    # The client's Idempotency-Key (None: none given); unique among servers.
    request_key: str | None = None
    # What it boots: {"image": ``ImageRecord.snapshot()``, "ssh_keys": [...], "user_data": str | None};
    # None: nothing (a domain without a disk).
    boot: Mapping[str, Any] | None = None

    def boot_columns(self) -> dict[str, Any]:
        if self.boot is None:
            return {"boot": None, "image_id": None}
        image = self.boot.get("image")
        return {"boot": dict(self.boot), "image_id": str(image["id"]) if image else None}

    def port_rows(self) -> list[dict[str, object]]:
        return [port_row(p) for p in self.ports]

    def flavor_json(self) -> dict[str, object]:
        f = self.flavor
        return {
            "name": f.name,
            "vcpus": f.vcpus,
            "memory_mb": f.memory_mb,
            "numa_nodes": f.numa_nodes,
            PCI_ALIAS_KEY: f.pci_alias,
            "numa_policy": f.numa_policy.value if f.numa_policy is not None else None,
            "disk_gb": f.disk_gb,
            "image": f.image,
        }


def port_row(p: Port) -> dict[str, object]:
    """A port as the servers table keeps it (a JSON column; the API's shape, which it always had)."""
    return {
        "physnet": p.physical_network,
        "vnic_type": p.vnic_type.value,
        "trusted": p.trusted,
        "vlan": p.vlan,
        "mac": p.mac,
    }


def row_port(row: Mapping[str, Any]) -> Port:
    """A stored port back: it was checked when it was stored."""
    return Port(row["physnet"], VnicType(row["vnic_type"]), bool(row["trusted"]), row.get("vlan"), row.get("mac"))


def to_record(
    row: ServerRow,
    host: str | None,
    devices: Sequence[ClaimedDevice] = (),
    cells: Sequence[tuple[int, int, int]] = (),
) -> ServerRecord:
    return ServerRecord(
        id=ServerId(row.id),
        name=row.name,
        status=ServerStatus(row.status),
        status_reason=row.status_reason,
        host=HostName(host) if host is not None else None,
        host_nodes=tuple(row.host_nodes),
        flavor=dict(row.flavor),
        ports=tuple(row_port(p) for p in row.ports),
        devices=tuple(devices),
        cells=tuple(cells),
        domain_uuid=row.domain_uuid,
        created_at=row.created_at,
        updated_at=row.updated_at,
        domain_state=row.domain_state,
        domain_xml=row.domain_xml,
        boot=dict(row.boot) if row.boot is not None else None,
    )


def load_servers(session: Session, where: Sequence[ColumnElement[bool]]) -> list[ServerRecord]:
    """The servers matching ``where`` (on servers and their outer-joined hosts), oldest first."""
    matching = select(ServerRow.id).outerjoin(HostRow, HostRow.id == ServerRow.host_id).where(*where)
    rows = session.execute(
        select(ServerRow, HostRow.name)
        .outerjoin(HostRow, HostRow.id == ServerRow.host_id)
        .where(*where)
        .order_by(ServerRow.created_at, ServerRow.id)
    ).all()
    if not rows:
        return []
    devices: dict[str, list[ClaimedDevice]] = {}
    for server_id, address, index, label, port in session.execute(
        select(
            ClaimRow.server_id, DeviceRow.address, ClaimRow.request_index, ClaimRow.request_label, ClaimRow.port_index
        )
        .join(DeviceRow, DeviceRow.id == ClaimRow.device_id)
        .where(ClaimRow.server_id.in_(matching.scalar_subquery()))
        .order_by(ClaimRow.server_id, ClaimRow.request_index, DeviceRow.address)
    ):
        devices.setdefault(server_id, []).append(ClaimedDevice(PciAddress.parse(address), index, label, port))
    cells: dict[str, list[tuple[int, int, int]]] = {}
    for server_id, node, cpus, memory in session.execute(
        select(ServerCellRow.server_id, ServerCellRow.node, ServerCellRow.cpus, ServerCellRow.memory_mb)
        .where(ServerCellRow.server_id.in_(matching.scalar_subquery()))
        .order_by(ServerCellRow.server_id, ServerCellRow.node)
    ):
        cells.setdefault(server_id, []).append((node, cpus, memory))
    return [to_record(row, host, devices.get(row.id, ()), cells.get(row.id, ())) for row, host in rows]


class DuplicateRequest(Conflict):
    """A server already carries this create's Idempotency-Key (the create was sent again)."""

    code = "duplicate_request"


def server_by_request_key(db: Database, key: str) -> ServerRecord | None:
    with db.transaction(readonly=True) as session:
        found = load_servers(session, [ServerRow.request_key == key])
    return found[0] if found else None


def insert_server(session: Session, row: ServerRow) -> None:
    """Add ``row`` now. When it carries a request key and cannot be inserted, ``DuplicateRequest`` (the
    transaction is lost): the caller looks the key up in a new one, and finds the server that took it."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError as e:
        if row.request_key is not None:
            raise DuplicateRequest(
                f"server {row.name!r} cannot be recorded with Idempotency-Key {row.request_key!r}: {e.orig}"
            ) from e
        raise


def get_server(db: Database, server_id: str) -> ServerRecord:
    with db.transaction(readonly=True) as session:
        found = load_servers(session, [ServerRow.id == server_id])
    if not found:
        raise NotFound(f"server {server_id!r} does not exist")
    return found[0]


def list_servers(
    db: Database,
    host: str | None = None,
    status: ServerStatus | str | None = None,
    include_deleted: bool = False,
) -> list[ServerRecord]:
    """Servers, oldest first. Deleted ones only with ``include_deleted`` or ``status="deleted"``; an
    unknown host gives an empty list, like any filter that matches nothing."""
    where: list[ColumnElement[bool]] = []
    if host is not None:
        where.append(HostRow.name == host)
    if status is not None:
        where.append(ServerRow.status == ServerStatus.parse(status).value)
    elif not include_deleted:
        where.append(ServerRow.status != ServerStatus.DELETED.value)
    with db.transaction(readonly=True) as session:
        return load_servers(session, where)


def servers_on_host(db: Database, host: str) -> list[ServerRecord]:
    """The servers placed on ``host`` that are not deleted: what its agent must make real."""
    with db.transaction(readonly=True) as session:
        hid = host_id(session, host)
        return load_servers(session, [ServerRow.host_id == hid, ServerRow.status != ServerStatus.DELETED.value])


def record_unscheduled(db: Database, server: NewServer, reason: str) -> ServerRecord:
    """Record a server no host could take: status ``error`` with ``reason``, no host, nothing held."""
    check_name(server.name, "server")
    now = utcnow()
    row = ServerRow(
        id=str(uuid.uuid4()),
        name=server.name,
        flavor=server.flavor_json(),
        ports=server.port_rows(),
        status=_V.ERROR.value,
        status_reason=reason,
        host_id=None,
        host_nodes=[],
        domain_uuid=None,
        request_key=server.request_key,
        created_at=now,
        updated_at=now,
        **server.boot_columns(),
    )
    with db.transaction() as session:
        insert_server(session, row)
    return to_record(row, None)


def set_server_status(
    db: Database,
    server_id: str,
    status: ServerStatus | str | None,
    reason: str | None = None,
    domain_uuid: str | None = None,
    *,
    domain_state: str | None = None,
    domain_xml: str | None = None,
    delete_wins: bool = False,
) -> ServerRecord:
    """Move a server along scheduled -> building -> active <-> stopped, or to error or deleting from
    any status but deleted (which only ``claims.release`` reaches); ``status=None`` keeps the status.
    ``reason`` replaces the status reason when the status changes, and is a note on the status as it
    is with ``status=None`` (an agent saying why a server still waits); ``domain_uuid``, ``domain_state``
    and ``domain_xml``, when given, record what the host's agent sees of the libvirt domain.
    ``delete_wins``: a server found ``deleting`` (under its row lock) keeps that status - a report
    that raced with a delete records the domain only (and a note given without a status)."""
    with db.transaction() as session:
        row = server_row(session, server_id)
        old = _V(row.status)
        if delete_wins and old is _V.DELETING and status is not None:
            # A build's status and reason lose to the delete; a note alone (the agent tearing the
            # server down saying what it could not undo) is about the deletion itself, and stays.
            status = reason = None
        if status is None and reason is not None:
            row.status_reason = reason
        if status is not None:
            new = ServerStatus.parse(status)
            check_server_transition(server_id, old, new)
            row.status = new.value
            row.status_reason = reason
            if new is _V.ACTIVE and old is not _V.ACTIVE:
                _allocate(session, server_id)
        if domain_uuid is not None:
            row.domain_uuid = domain_uuid
        if domain_state is not None:
            row.domain_state = domain_state
        if domain_xml is not None:
            row.domain_xml = domain_xml
        row.updated_at = utcnow()
        session.flush()
        return load_servers(session, [ServerRow.id == server_id])[0]


def _allocate(session: Session, server_id: str) -> None:
    """The server's domain runs with its devices: what was claimed for it is now allocated."""
    session.execute(
        update(DeviceRow)
        .where(DeviceRow.owner == server_id, DeviceRow.status == DeviceStatus.CLAIMED.value)
        .values(status=DeviceStatus.ALLOCATED.value, updated_at=utcnow())
    )


def server_row(session: Session, server_id: str) -> ServerRow:
    """The server's row, locked until the transaction ends (NotFound if there is none)."""
    row = session.execute(
        select(ServerRow).where(ServerRow.id == server_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"server {server_id!r} does not exist")
    return row
