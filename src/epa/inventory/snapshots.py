"""Host snapshots: what the in-memory scheduler of an API process is built from, read in a constant
number of queries however many hosts there are, and the versions that tell such a view is stale.

A snapshot is read in one transaction (REPEATABLE READ on PostgreSQL, a WAL read transaction on
SQLite), so its generations, usage and free devices describe one moment. The scheduler applies
allocation ratios itself: ``cpus`` and ``memory_mb`` are the host's raw totals."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import Integer, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from epa.domain.address import PciAddress
from epa.domain.device import DevType, TagPairs
from epa.domain.pci_group import switch_of
from epa.domain.server import ServerStatus
from epa.domain.status import DeviceStatus
from epa.inventory.db import Database
from epa.inventory.schema import DeviceRow, HostRow, NumaCellRow, ServerCellRow, ServerRow

# Bound parameters per IN list: under SQLite's oldest limit (999) and far under PostgreSQL's (65,535).
CHUNK = 900
_IN_USE = (DeviceStatus.CLAIMED.value, DeviceStatus.ALLOCATED.value)

_Ts = TypeVarTuple("_Ts")


@dataclass(frozen=True, slots=True)
class CellUsage:
    """One host NUMA node: its raw CPU count and memory, and what servers hold of them."""

    node: int
    socket: int | None
    cpus: int
    memory_mb: int
    used_cpus: int
    used_memory_mb: int


@dataclass(frozen=True, slots=True)
class FreeDevice:
    """An assignable device that is ``available`` and still on its host."""

    address: PciAddress
    vendor_id: str
    product_id: str
    dev_type: DevType
    numa_node: int | None
    parent_addr: PciAddress | None
    tags: TagPairs
    has_netdev: bool
    # Where it sits in the PCIe tree: its root complex and the switch it is behind (None: none).
    root: str | None = None
    switch: PciAddress | None = None


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """A host as the scheduler needs it. ``vfs_in_use`` counts, per PF, its claimed or allocated VFs;
    ``assignable`` counts the assignable devices that are not ``removed``, free or not."""

    name: str
    enabled: bool
    last_report_at: datetime | None
    generation: int
    claim_generation: int
    cells: tuple[CellUsage, ...]
    free: tuple[FreeDevice, ...]
    vfs_in_use: tuple[tuple[PciAddress, int], ...]
    assignable: int
    # sha256 of the image parts the host's agent last said its cache holds.
    images: frozenset[str] = frozenset()
    # PCIe switches with an assignable device that is claimed or allocated.
    busy_switches: frozenset[PciAddress] = frozenset()


def host_versions(db: Database) -> dict[str, tuple[int, int]]:
    """Every host's (report generation, claim generation), by name, in one query."""
    query = select(HostRow.name, HostRow.generation, HostRow.claim_generation)
    with db.transaction(readonly=True) as session:
        return {name: (generation, claims) for name, generation, claims in session.execute(query)}


def load_snapshots(db: Database, names: Collection[str] | None = None) -> list[HostSnapshot]:
    """Snapshots of every host (``names`` None) or of the named ones that exist, sorted by name.

    Four queries per chunk of ``CHUNK`` names (four in all without ``names``): hosts, NUMA cells,
    CPU and memory held by servers per node, and the devices that matter (assignable or in use)."""
    chunks: list[Sequence[str] | None] = [None] if names is None else list(_chunks(sorted(set(names))))
    out: list[HostSnapshot] = []
    with db.transaction(readonly=True) as session:
        if db.dialect == "postgresql":
            # One snapshot for all the queries below (READ COMMITTED would take one per statement).
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        for chunk in chunks:
            out.extend(_load(session, chunk))
    out.sort(key=lambda s: s.name)
    return out


def used_by_node(session: Session, host_id: int) -> dict[int, tuple[int, int]]:
    """(CPUs, memory_mb) that servers hold on each NUMA node of one host (claims check against it)."""
    query = _used_query().where(ServerCellRow.host_id == host_id)
    return {node: (cpus, memory) for _hid, node, cpus, memory in session.execute(query)}


def _used_query() -> Select[int, int, int, int]:
    return (
        select(
            ServerCellRow.host_id,
            ServerCellRow.node,
            func.coalesce(func.sum(ServerCellRow.cpus), 0).cast(Integer),
            func.coalesce(func.sum(ServerCellRow.memory_mb), 0).cast(Integer),
        )
        .join(ServerRow, ServerRow.id == ServerCellRow.server_id)
        .where(ServerRow.status != ServerStatus.DELETED.value)
        .group_by(ServerCellRow.host_id, ServerCellRow.node)
    )


def _chunks(names: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(names), CHUNK):
        yield names[start : start + CHUNK]


def _only(query: Select[*_Ts], host_id: Any, names: Sequence[str] | None) -> Select[*_Ts]:
    """Narrow ``query`` to the hosts named in ``names`` (a join on hosts), or leave it whole."""
    if names is None:
        return query
    return query.join(HostRow, HostRow.id == host_id).where(HostRow.name.in_(names))


def _load(session: Session, names: Sequence[str] | None) -> list[HostSnapshot]:
    hosts_q = select(
        HostRow.id,
        HostRow.name,
        HostRow.enabled,
        HostRow.last_report_at,
        HostRow.generation,
        HostRow.claim_generation,
        HostRow.images,
    )
    if names is not None:
        hosts_q = hosts_q.where(HostRow.name.in_(names))
    hosts = session.execute(hosts_q).all()
    if not hosts:
        return []

    cells_q = select(NumaCellRow.host_id, NumaCellRow.node, NumaCellRow.socket, NumaCellRow.cpus, NumaCellRow.memory_mb)
    cells: dict[int, list[tuple[int, int | None, int, int]]] = {}
    for hid, node, socket, cpus, memory in session.execute(_only(cells_q, NumaCellRow.host_id, names)):
        cells.setdefault(hid, []).append((node, socket, len(cpus), memory))

    used: dict[tuple[int, int], tuple[int, int]] = {
        (hid, node): (cpus, memory)
        for hid, node, cpus, memory in session.execute(_only(_used_query(), ServerCellRow.host_id, names))
    }

    devices_q = select(
        DeviceRow.host_id,
        DeviceRow.address,
        DeviceRow.vendor_id,
        DeviceRow.product_id,
        DeviceRow.dev_type,
        DeviceRow.numa_node,
        DeviceRow.parent_addr,
        DeviceRow.tags,
        DeviceRow.netdevs,
        DeviceRow.assignable,
        DeviceRow.status,
        DeviceRow.vanished,
        DeviceRow.pci_root,
        DeviceRow.pcie_path,
    ).where(
        DeviceRow.status != DeviceStatus.REMOVED.value,
        or_(
            DeviceRow.assignable.is_(True),
            and_(DeviceRow.dev_type == DevType.VF.value, DeviceRow.status.in_(_IN_USE)),
        ),
    )
    devices: dict[int, _Devices] = {}
    for row in session.execute(_only(devices_q, DeviceRow.host_id, names)):
        devices.setdefault(row.host_id, _Devices()).add(row)

    out = []
    for h in hosts:
        found = devices.get(h.id) or _Devices()
        out.append(
            HostSnapshot(
                name=h.name,
                enabled=h.enabled,
                last_report_at=h.last_report_at,
                generation=h.generation,
                claim_generation=h.claim_generation,
                cells=tuple(
                    CellUsage(node, socket, cpus, memory, *used.get((h.id, node), (0, 0)))
                    for node, socket, cpus, memory in sorted(cells.get(h.id, ()))
                ),
                free=tuple(sorted(found.free, key=lambda d: d.address)),
                vfs_in_use=tuple(sorted(found.vfs_in_use.items())),
                assignable=found.assignable,
                images=frozenset(str(p["sha256"]) for p in (h.images or {}).get("parts", [])),
                busy_switches=frozenset(found.busy_switches),
            )
        )
    return out


class _Devices:
    """One host's devices, folded as the rows arrive."""

    def __init__(self) -> None:
        self.free: list[FreeDevice] = []
        self.vfs_in_use: dict[PciAddress, int] = {}
        self.assignable = 0
        self.busy_switches: set[PciAddress] = set()

    def add(self, row: Any) -> None:
        switch = switch_of([PciAddress.parse(a) for a in row.pcie_path or ()])
        if row.assignable:
            self.assignable += 1
            if switch is not None and row.status in _IN_USE:
                self.busy_switches.add(switch)
        if row.status in _IN_USE and row.dev_type == DevType.VF.value and row.parent_addr:
            pf = PciAddress.parse(row.parent_addr)
            self.vfs_in_use[pf] = self.vfs_in_use.get(pf, 0) + 1
        if row.assignable and row.status == DeviceStatus.AVAILABLE.value and not row.vanished:
            self.free.append(
                FreeDevice(
                    address=PciAddress.parse(row.address),
                    vendor_id=row.vendor_id,
                    product_id=row.product_id,
                    dev_type=DevType(row.dev_type),
                    numa_node=row.numa_node,
                    parent_addr=PciAddress.parse(row.parent_addr) if row.parent_addr else None,
                    tags=tuple(sorted(row.tags.items())),
                    has_netdev=bool(row.netdevs),
                    root=row.pci_root,
                    switch=switch,
                )
            )
