"""Hosts: create (with the agent's token), list, read, enable/disable, rotate the token, delete.

Reading hosts costs three queries however many there are: the hosts, their NUMA cells, and the
device counts by one GROUP BY."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from epa.domain.flavor import check_name
from epa.domain.host import NumaCell
from epa.domain.status import DeviceStatus
from epa.errors import Conflict, NotFound
from epa.inventory.changes import mark_changed, record_deleted
from epa.inventory.db import Database
from epa.inventory.records import HostRecord, iso_utc
from epa.inventory.schema import DeviceRow, HostRow, ImagePartRow, ImageRow, NumaCellRow, ServerRow, utcnow
from epa.inventory.tokens import new_agent_token

_IN_USE = (DeviceStatus.CLAIMED.value, DeviceStatus.ALLOCATED.value)


def _host_row(session: Session, name: str, for_update: bool = False) -> HostRow:
    query = select(HostRow).where(HostRow.name == name)
    if for_update:
        # Row lock on PostgreSQL (ignored by SQLite, whose writers hold the database lock): orders
        # this against reports and status changes of the same host.
        query = query.with_for_update()
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound(f"host {name!r} does not exist")
    return row


def host_id(session: Session, name: str, for_update: bool = False) -> int:
    """The id of host ``name`` (NotFound if there is none), optionally locking its row."""
    return _host_row(session, name, for_update).id


def _records(session: Session, hosts: Sequence[HostRow], only: int | None = None) -> list[HostRecord]:
    """HostRecords for ``hosts``; ``only`` narrows the cell and count queries to one host id."""
    cells_q = select(NumaCellRow).order_by(NumaCellRow.host_id, NumaCellRow.node)
    counts_q = select(DeviceRow.host_id, DeviceRow.status, func.count()).group_by(DeviceRow.host_id, DeviceRow.status)
    if only is not None:
        cells_q = cells_q.where(NumaCellRow.host_id == only)
        counts_q = counts_q.where(DeviceRow.host_id == only)
    cells: dict[int, list[NumaCell]] = {}
    for c in session.execute(cells_q).scalars():
        cells.setdefault(c.host_id, []).append(NumaCell(c.node, tuple(c.cpus), c.memory_mb, c.socket))
    counts: dict[int, dict[str, int]] = {}
    for hid, status, n in session.execute(counts_q):
        counts.setdefault(hid, {})[status] = n
    out = []
    for h in hosts:
        # Every status is listed, with zeros, so that the shape of device_counts never varies.
        by_status = {s.value: counts.get(h.id, {}).get(s.value, 0) for s in DeviceStatus}
        out.append(
            HostRecord(
                name=h.name,
                enabled=h.enabled,
                generation=h.generation,
                last_report_at=h.last_report_at,
                numa_cells=tuple(cells.get(h.id, ())),
                device_counts=by_status,
                device_total=sum(by_status.values()),
                hypervisor=h.hypervisor,
                images=h.images,
            )
        )
    return out


def create_host(db: Database, name: str) -> tuple[HostRecord, str]:
    """Create host ``name`` and its agent token; return both (the token is not kept in clear)."""
    check_name(name, "host")
    with db.transaction() as session:
        if session.execute(select(HostRow.id).where(HostRow.name == name)).first() is not None:
            raise Conflict(f"host {name!r} already exists")
        row = HostRow(name=name, enabled=True, generation=0, last_report_at=None, created_at=utcnow())
        session.add(row)
        session.flush()  # the unique constraint is the backstop for a concurrent create
        mark_changed(session, [row.id])
        token = new_agent_token(session, row.id)
        return _records(session, [row], only=row.id)[0], token


def list_hosts(db: Database) -> list[HostRecord]:
    """Every host, sorted by name."""
    with db.transaction(readonly=True) as session:
        hosts = session.execute(select(HostRow).order_by(HostRow.name)).scalars().all()
        return _records(session, hosts)


def get_host(db: Database, name: str) -> HostRecord:
    with db.transaction(readonly=True) as session:
        row = _host_row(session, name)
        return _records(session, [row], only=row.id)[0]


def set_host_enabled(db: Database, name: str, enabled: bool) -> HostRecord:
    with db.transaction() as session:
        row = _host_row(session, name, for_update=True)
        if row.enabled != enabled:
            row.enabled = enabled
            row.claim_generation += 1
            session.flush()
            # Schedulers in every API process reload the hosts the change feed names.
            mark_changed(session, [row.id])
        return _records(session, [row], only=row.id)[0]


def set_hypervisor(db: Database, name: str, state: Mapping[str, Any]) -> HostRecord:
    """Record what host ``name``'s agent says of its hypervisor (``reported_at`` is added here)."""
    with db.transaction() as session:
        row = _host_row(session, name, for_update=True)
        row.hypervisor = {**state, "reported_at": iso_utc(utcnow())}
        session.flush()
        return _records(session, [row], only=row.id)[0]


def set_images(db: Database, name: str, parts: Sequence[Mapping[str, Any]]) -> HostRecord:
    """Record which image parts host ``name``'s agent holds (``[{"sha256", "size"}]``), named by the
    images they belong to. A change of the set goes on the change feed: the schedulers' preference for
    hosts that hold a server's image follows it."""
    held = {str(p["sha256"]): int(p["size"]) for p in parts}
    with db.transaction() as session:
        row = _host_row(session, name, for_update=True)
        before = {str(p["sha256"]) for p in (row.images or {}).get("parts", [])}
        found = session.execute(
            select(ImageRow.name, ImagePartRow.sha256).join(ImageRow).where(ImagePartRow.sha256.in_(sorted(held)))
        ).all()
        names: dict[str, list[str]] = {}
        for image, sha in found:
            names.setdefault(sha, []).append(image)
        row.images = {
            "parts": [{"sha256": s, "size": held[s], "images": sorted(names.get(s, []))} for s in sorted(held)],
            "reported_at": iso_utc(utcnow()),
        }
        session.flush()
        if set(held) != before:
            mark_changed(session, [row.id])
        return _records(session, [row], only=row.id)[0]


def rotate_agent_token(db: Database, name: str) -> str:
    """A new agent token for host ``name``; the old one stops working when this commits."""
    with db.transaction() as session:
        return new_agent_token(session, host_id(session, name, for_update=True))


def delete_host(db: Database, name: str) -> None:
    """Delete a host with its devices, cells and token; refused while any device is in use."""
    with db.transaction() as session:
        hid = host_id(session, name, for_update=True)
        in_use = session.execute(
            select(DeviceRow.address)
            .where(DeviceRow.host_id == hid, DeviceRow.status.in_(_IN_USE))
            .order_by(DeviceRow.address)
            .limit(3)
        ).scalars()
        busy = list(in_use)
        if busy:
            raise Conflict(
                f"host {name!r} cannot be deleted while devices are claimed or allocated (e.g. {', '.join(busy)})"
            )
        live = list(
            session.execute(
                select(ServerRow.id)
                .where(ServerRow.host_id == hid, ServerRow.status != "deleted")
                .order_by(ServerRow.id)
                .limit(3)
            ).scalars()
        )
        if live:
            raise Conflict(f"host {name!r} cannot be deleted while servers are on it (e.g. {', '.join(live)})")
        # Deleted servers keep their host for history; that history goes with the host.
        session.execute(delete(ServerRow).where(ServerRow.host_id == hid))
        session.execute(delete(HostRow).where(HostRow.id == hid))
        record_deleted(session, name)
