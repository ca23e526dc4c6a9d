"""Claims: commit a scheduler's placement atomically, and release it.

The scheduler of an API process decides from a view that may be stale; ``claim`` re-checks all of
it against the database under the host's row lock (``SELECT ... FOR UPDATE`` on PostgreSQL, the
one write lock on SQLite), so that processes claiming on one host take turns and a device is never
granted twice. The unique ``claims.device_id`` is the backstop should the checks ever be wrong."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from epa.crashpoints import crash_point
from epa.domain.device import DevType
from epa.domain.flavor import check_name
from epa.domain.server import ClaimedDevice, HostName, ServerId, ServerStatus
from epa.domain.status import DeviceStatus, InvalidStatusTransition, check_transition
from epa.errors import Conflict, InvalidInput
from epa.inventory._rows import COLUMNS, settle_host
from epa.inventory.changes import mark_changed
from epa.inventory.db import Database
from epa.inventory.records import ServerRecord
from epa.inventory.schema import ClaimRow, DeviceRow, HostRow, NumaCellRow, ServerCellRow, ServerRow, utcnow
from epa.inventory.servers import (
    DuplicateRequest,
    NewServer,
    insert_server,
    load_servers,
    record_unscheduled,
    server_row,
    set_server_status,
)
from epa.inventory.snapshots import used_by_node

__all__ = [
    "ClaimConflict",
    "ClaimPlan",
    "DuplicateRequest",
    "NewServer",
    "claim",
    "record_unscheduled",
    "release",
    "set_server_status",
]

_S = DeviceStatus
_V = ServerStatus
Row = dict[str, Any]


class ClaimConflict(Conflict):
    """The placement no longer fits the host: another claim got there first, or the host changed."""

    code = "claim_conflict"


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    """Where a server goes and what it holds there: ``host_nodes[i]`` is the host NUMA node of guest
    node i; CPUs and memory by host node; the devices, each with its request and port; the allocation
    ratios the host's capacity is counted with."""

    host: str
    host_nodes: tuple[int, ...]
    cpus_by_node: Mapping[int, int]
    memory_by_node: Mapping[int, int]
    devices: tuple[ClaimedDevice, ...] = ()
    cpu_ratio: float = 1.0
    ram_ratio: float = 1.0


def claim(db: Database, server: NewServer, plan: ClaimPlan) -> ServerRecord:
    """Record ``server`` as ``scheduled`` as ``plan`` says, in one transaction; ``ClaimConflict`` (and
    nothing written) when the host can no longer give it."""
    check_name(server.name, "server")
    wanted = _check_request(server, plan)
    host, host_nodes, cpus_by_node, memory_by_node = plan.host, plan.host_nodes, plan.cpus_by_node, plan.memory_by_node
    cpu_ratio, ram_ratio = plan.cpu_ratio, plan.ram_ratio
    server_id = str(uuid.uuid4())
    now = utcnow()
    with db.transaction() as session:
        hid = _lock_host(session, host)
        _check_capacity(session, host, hid, cpus_by_node, memory_by_node, cpu_ratio, ram_ratio)
        rows = _families(session, hid, wanted)
        reason = _refusal(rows, wanted)
        if reason is not None:
            raise ClaimConflict(f"claim on host {host!r}: {reason}")
        statuses = {a: _S(r["status"]) for a, r in rows.items()}
        for address in wanted:
            check_transition(address, statuses[address], _S.CLAIMED)
            statuses[address] = _S.CLAIMED
        try:
            settled = settle_host(rows.values(), statuses, strict=True)
        except InvalidStatusTransition as e:
            raise ClaimConflict(f"claim on host {host!r}: {e}") from e

        insert_server(
            session,
            ServerRow(
                id=server_id,
                name=server.name,
                flavor=server.flavor_json(),
                ports=server.port_rows(),
                status=_V.SCHEDULED.value,
                status_reason=None,
                host_id=hid,
                host_nodes=list(host_nodes),
                domain_uuid=None,
                request_key=server.request_key,
                created_at=now,
                updated_at=now,
                **server.boot_columns(),
            ),
        )
        cells = sorted(
            (n, cpus_by_node.get(n, 0), memory_by_node.get(n, 0)) for n in set(cpus_by_node) | set(memory_by_node)
        )
        if cells:
            session.execute(
                insert(ServerCellRow),
                [{"server_id": server_id, "host_id": hid, "node": n, "cpus": c, "memory_mb": m} for n, c, m in cells],
            )
        if wanted:
            try:
                session.execute(
                    insert(ClaimRow),
                    [
                        {
                            "server_id": server_id,
                            "device_id": rows[a]["id"],
                            "request_index": d.request_index,
                            "request_label": d.request_label,
                            "port_index": d.port,
                            "created_at": now,
                        }
                        for a, d in sorted(wanted.items())
                    ],
                )
            except IntegrityError as e:
                raise ClaimConflict(
                    f"claim on host {host!r}: one of {', '.join(sorted(wanted))} is already in another claim"
                ) from e
            _write_statuses(
                session,
                rows,
                {**settled, **dict.fromkeys(wanted, _S.CLAIMED)},
                dict.fromkeys(wanted, server_id),
                now,
            )
        _bump(session, hid)
        session.flush()
        crash_point("claim.before_commit")
    crash_point("claim.after_commit")
    return ServerRecord(
        id=ServerId(server_id),
        name=server.name,
        status=_V.SCHEDULED,
        status_reason=None,
        host=HostName(host),
        host_nodes=tuple(host_nodes),
        flavor=server.flavor_json(),
        ports=server.ports,
        devices=tuple(sorted(wanted.values(), key=lambda d: (d.request_index, str(d.address)))),
        cells=tuple(cells),
        domain_uuid=None,
        created_at=now,
        updated_at=now,
        boot=dict(server.boot) if server.boot is not None else None,
    )


def release(db: Database, server_id: str, *, error: str | None = None) -> ServerRecord:
    """Give back everything ``server_id`` holds and mark it ``deleted`` - or ``error`` with that reason
    when ``error`` is given (the server failed on its host), unless a delete came first: a ``deleting``
    server ends ``deleted`` either way. From any status; a device that vanished from its host
    meanwhile becomes ``removed``. Releasing a deleted server is a no-op."""
    with db.transaction() as session:
        hid = session.execute(select(ServerRow.host_id).where(ServerRow.id == server_id)).scalar_one_or_none()
        if hid is not None:
            # The host first, as claims do: the same lock order everywhere.
            session.execute(select(HostRow.id).where(HostRow.id == hid).with_for_update())
        row = server_row(session, server_id)
        if row.status != _V.DELETED.value:
            if hid is not None:
                _free_devices(session, hid, server_id)
                session.execute(delete(ServerCellRow).where(ServerCellRow.server_id == server_id))
                _bump(session, hid)
            failed = error is not None and row.status != _V.DELETING.value
            row.status = _V.ERROR.value if failed else _V.DELETED.value
            if failed:
                row.status_reason = error
            row.updated_at = utcnow()
            session.flush()
            crash_point("release.before_commit")
        released = load_servers(session, [ServerRow.id == server_id])[0]
    crash_point("release.after_commit")
    return released


# --- the pieces ------------------------------------------------------------------------------------


def _check_request(server: NewServer, plan: ClaimPlan) -> dict[str, ClaimedDevice]:
    """The caller's own mistakes (InvalidInput), found before any lock; the devices by address."""
    flavor, host_nodes = server.flavor, plan.host_nodes
    if len(set(host_nodes)) != len(host_nodes) or len(host_nodes) != flavor.numa_nodes:
        raise InvalidInput(f"claim: host_nodes {list(host_nodes)} must be {flavor.numa_nodes} distinct node(s)")
    for what, by_node, total in (
        ("cpus", plan.cpus_by_node, flavor.vcpus),
        ("memory", plan.memory_by_node, flavor.memory_mb),
    ):
        stray = sorted(set(by_node) - set(host_nodes))
        if stray or any(v < 0 for v in by_node.values()) or sum(by_node.values()) != total:
            raise InvalidInput(
                f"claim: {what} by node {dict(by_node)} must be >= 0 on host_nodes {list(host_nodes)} "
                f"and add up to the flavor's {total}"
            )
    for what, ratio in (("cpu_ratio", plan.cpu_ratio), ("ram_ratio", plan.ram_ratio)):
        if not (math.isfinite(ratio) and ratio > 0):
            raise InvalidInput(f"claim: {what} ({ratio!r}) must be a positive number")
    wanted: dict[str, ClaimedDevice] = {}
    for d in plan.devices:
        canonical = str(d.address)
        if canonical in wanted:
            raise InvalidInput(f"claim: device {canonical} is listed twice")
        if isinstance(d.request_index, bool) or not isinstance(d.request_index, int) or d.request_index < 0:
            raise InvalidInput(
                f"claim: request_index ({d.request_index!r}) of device {canonical} must be an integer >= 0"
            )
        if d.port is not None and not 0 <= d.port < len(server.ports):
            raise InvalidInput(f"claim: device {canonical} backs port {d.port}; the server has {len(server.ports)}")
        wanted[canonical] = d
    return wanted


def _lock_host(session: Session, host: str) -> int:
    found = session.execute(
        select(HostRow.id, HostRow.enabled).where(HostRow.name == host).with_for_update()
    ).one_or_none()
    if found is None:
        raise ClaimConflict(f"claim on host {host!r}: the host does not exist (any more)")
    if not found.enabled:
        raise ClaimConflict(f"claim on host {host!r}: the host is disabled")
    return int(found.id)


def _check_capacity(
    session: Session,
    host: str,
    hid: int,
    cpus_by_node: Mapping[int, int],
    memory_by_node: Mapping[int, int],
    cpu_ratio: float,
    ram_ratio: float,
) -> None:
    totals = {
        node: (len(cpus), memory)
        for node, cpus, memory in session.execute(
            select(NumaCellRow.node, NumaCellRow.cpus, NumaCellRow.memory_mb).where(NumaCellRow.host_id == hid)
        )
    }
    used = used_by_node(session, hid)
    for node in sorted(set(cpus_by_node) | set(memory_by_node)):
        if node not in totals:
            raise ClaimConflict(f"claim on host {host!r}: NUMA node {node} does not exist")
        total_cpus, total_memory = totals[node]
        used_cpus, used_memory = used.get(node, (0, 0))
        for what, asked, in_use, cap in (
            ("vCPUs", cpus_by_node.get(node, 0), used_cpus, math.floor(total_cpus * cpu_ratio)),
            ("MB of memory", memory_by_node.get(node, 0), used_memory, math.floor(total_memory * ram_ratio)),
        ):
            if asked > 0 and in_use + asked > cap:
                raise ClaimConflict(
                    f"claim on host {host!r}: NUMA node {node} has {max(cap - in_use, 0)} {what} free "
                    f"({in_use} of {cap} in use), {asked} asked"
                )


def _families(session: Session, hid: int, addresses: Iterable[str]) -> dict[str, Row]:
    """The rows of ``addresses`` on the host, with every member of the PF/VF families they are in."""
    wanted = sorted(addresses)
    if not wanted:
        return {}
    rows = {
        r["address"]: dict(r)
        for r in session.execute(
            select(*COLUMNS).where(DeviceRow.host_id == hid, DeviceRow.address.in_(wanted))
        ).mappings()
    }
    pfs = {r["address"] for r in rows.values() if r["dev_type"] == DevType.PF.value}
    pfs |= {r["parent_addr"] for r in rows.values() if r["dev_type"] == DevType.VF.value and r["parent_addr"]}
    if pfs:
        family = select(*COLUMNS).where(
            DeviceRow.host_id == hid, or_(DeviceRow.address.in_(sorted(pfs)), DeviceRow.parent_addr.in_(sorted(pfs)))
        )
        for r in session.execute(family).mappings():
            rows.setdefault(r["address"], dict(r))
    return rows


def _refusal(rows: Mapping[str, Row], wanted: Mapping[str, object]) -> str | None:
    """Why the devices cannot be claimed together, or None."""
    for address in sorted(wanted):
        row = rows.get(address)
        if row is None:
            return f"device {address} does not exist"
        status = _S(row["status"])
        if not row["assignable"]:
            return f"device {address} is not assignable (no device_spec matches)"
        if status is _S.REMOVED or row["vanished"]:
            return f"device {address} is gone from the host ({status.value})"
        if status.in_use:
            return f"device {address} is {status.value} by server {row['owner']}"
        kin = _kin_in_use(rows, row)
        if kin is not None:
            return f"device {address} is unavailable: {kin}"
        if status is not _S.AVAILABLE:
            return f"device {address} is {status.value}"
        if row["dev_type"] == DevType.VF.value and row["parent_addr"] in wanted:
            return f"PF {row['parent_addr']} and its own VF {address} cannot be claimed together"
    return None


def _kin_in_use(rows: Mapping[str, Row], row: Row) -> str | None:
    """The PF/VF rule from the rows themselves, not from the derived ``unavailable``."""
    if row["dev_type"] == DevType.VF.value and row["parent_addr"] in rows:
        pf = rows[row["parent_addr"]]
        if _S(pf["status"]).in_use:
            return f"its PF {pf['address']} is {pf['status']}"
    if row["dev_type"] == DevType.PF.value:
        busy = sorted(a for a, r in rows.items() if r["parent_addr"] == row["address"] and _S(r["status"]).in_use)
        if busy:
            return f"its VF {busy[0]} is {rows[busy[0]]['status']}"
    return None


def _write_statuses(
    session: Session,
    rows: Mapping[str, Row],
    statuses: Mapping[str, DeviceStatus],
    owners: Mapping[str, str | None],
    now: Any,
) -> None:
    """Write new statuses; ``owners`` (by address) also sets the owner and clears ``vanished``."""
    owned = [
        {"id": rows[a]["id"], "status": statuses[a].value, "owner": owner, "vanished": False, "updated_at": now}
        for a, owner in sorted(owners.items())
    ]
    others = [
        {"id": rows[a]["id"], "status": s.value, "updated_at": now}
        for a, s in sorted(statuses.items())
        if a not in owners and s.value != rows[a]["status"]
    ]
    # A bulk UPDATE by primary key wants one set of keys per statement.
    for params in (owned, others):
        if params:
            session.execute(update(DeviceRow), params)


def _free_devices(session: Session, hid: int, server_id: str) -> None:
    claimed = session.execute(
        select(DeviceRow.address)
        .join(ClaimRow, ClaimRow.device_id == DeviceRow.id)
        .where(ClaimRow.server_id == server_id)
    ).scalars()
    rows = _families(session, hid, list(claimed))
    statuses = {a: _S(r["status"]) for a, r in rows.items()}
    freed: dict[str, str | None] = {}
    for address in sorted(rows):
        row = rows[address]
        # Only what is still this server's: a device set free by hand and taken since stays taken.
        if row["owner"] != server_id or not statuses[address].in_use:
            continue
        check_transition(address, statuses[address], _S.AVAILABLE)
        statuses[address] = _S.AVAILABLE
        if row["vanished"]:
            # Gone from the host while in use: it goes on through available to removed.
            check_transition(address, _S.AVAILABLE, _S.REMOVED)
            statuses[address] = _S.REMOVED
        freed[address] = None
    # Not strict: a release must always go through, whatever state the family is in.
    settled = settle_host(rows.values(), statuses, strict=False)
    session.execute(delete(ClaimRow).where(ClaimRow.server_id == server_id))
    _write_statuses(session, rows, {**statuses, **settled}, freed, utcnow())


def _bump(session: Session, hid: int) -> None:
    session.execute(
        update(HostRow)
        .where(HostRow.id == hid)
        .values(claim_generation=HostRow.claim_generation + 1)
        .execution_options(synchronize_session=False)
    )
    mark_changed(session, [hid])
