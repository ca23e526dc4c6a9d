"""The scheduler's view of one host: free CPUs and memory per NUMA cell, and its free devices in pools."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from epa.domain.address import PciAddress
from epa.domain.device import DevType, TagPairs
from epa.scheduler.request import ServerRequest


@dataclass(slots=True)
class Cell:
    """A host NUMA node. ``cpus``/``memory_mb`` are the schedulable totals (after allocation ratios)."""

    node: int
    cpus: int
    memory_mb: int
    socket: int | None = None
    used_cpus: int = 0
    used_memory_mb: int = 0

    @property
    def free_cpus(self) -> int:
        return self.cpus - self.used_cpus

    @property
    def free_memory_mb(self) -> int:
        return self.memory_mb - self.used_memory_mb


@dataclass(frozen=True, slots=True)
class Slot:
    """One free, assignable device."""

    address: PciAddress
    vendor_id: str
    product_id: str
    dev_type: DevType
    numa_node: int | None
    parent_addr: PciAddress | None
    tags: TagPairs = ()
    has_netdev: bool = False
    # Its root complex (``pci0000:3a``) and the upstream port of the PCIe switch it sits behind
    # (epa.domain.pci_group.switch_of; None: right under a root port).
    root: str | None = None
    switch: PciAddress | None = None

    @property
    def pool_key(self) -> PoolKey:
        return (
            self.vendor_id,
            self.product_id,
            self.dev_type,
            self.numa_node,
            self.parent_addr,
            self.tags,
            self.has_netdev,
            self.root,
            self.switch,
        )

    @property
    def signature(self) -> Signature:
        """The NUMA- and PF-independent part of the pool key: what the cluster-wide index counts."""
        return (self.vendor_id, self.product_id, self.dev_type, self.tags, self.has_netdev)


PoolKey = tuple[str, str, DevType, int | None, PciAddress | None, TagPairs, bool, str | None, PciAddress | None]
Signature = tuple[str, str, DevType, TagPairs, bool]


@dataclass(slots=True)
class Pool:
    """Free devices with identical scheduling properties (Nova's PCI pool)."""

    key: PoolKey
    slots: list[Slot]

    @property
    def count(self) -> int:
        return len(self.slots)

    @property
    def numa_node(self) -> int | None:
        return self.key[3]

    @property
    def parent_addr(self) -> PciAddress | None:
        return self.key[4]

    @property
    def root(self) -> str | None:
        return self.key[7]

    @property
    def switch(self) -> PciAddress | None:
        return self.key[8]


@dataclass(slots=True)
class HostState:
    """``free`` holds the assignable devices whose status is ``available``; ``vfs_in_use`` counts, per
    PF, its VFs that are claimed or allocated (such a PF is already split, so more VFs are best taken
    from it); ``assignable`` counts all assignable devices, free or not; ``busy_switches`` are the PCIe
    switches with a device in use (the others are whole, kept for groups where possible)."""

    name: str
    enabled: bool
    last_report: float | None
    cells: dict[int, Cell]
    free: dict[PciAddress, Slot] = field(default_factory=dict)
    vfs_in_use: dict[PciAddress, int] = field(default_factory=dict)
    assignable: int = 0
    # sha256 of the image parts the host's agent says its cache holds.
    images: frozenset[str] = frozenset()
    busy_switches: set[PciAddress] = field(default_factory=set)
    _pools: list[Pool] | None = None
    _whole: dict[int | None, int] | None = None

    @classmethod
    def build(
        cls,
        name: str,
        enabled: bool,
        last_report: float | None,
        cells: Iterable[Cell],
        free: Iterable[Slot],
        vfs_in_use: Mapping[PciAddress, int],
        assignable: int,
        images: Iterable[str] = (),
        busy_switches: Iterable[PciAddress] = (),
    ) -> HostState:
        return cls(
            name,
            enabled,
            last_report,
            {c.node: c for c in cells},
            {s.address: s for s in free},
            dict(vfs_in_use),
            assignable,
            frozenset(images),
            set(busy_switches),
        )

    def holds_image(self, request: ServerRequest) -> bool:
        """Whether this host's cache holds every part of the image ``request`` boots (False: none)."""
        return bool(request.image_parts) and request.image_parts <= self.images

    @property
    def free_cpus(self) -> int:
        return sum(c.free_cpus for c in self.cells.values())

    @property
    def free_memory_mb(self) -> int:
        return sum(c.free_memory_mb for c in self.cells.values())

    @property
    def total_memory_mb(self) -> int:
        return sum(c.memory_mb for c in self.cells.values())

    def socket_of(self, node: int | None) -> int | None:
        cell = self.cells.get(node) if node is not None else None
        return cell.socket if cell is not None else None

    def pools(self) -> list[Pool]:
        if self._pools is None:
            grouped: dict[PoolKey, list[Slot]] = {}
            for slot in sorted(self.free.values(), key=lambda s: s.address):
                grouped.setdefault(slot.pool_key, []).append(slot)
            self._pools = [Pool(k, v) for k, v in grouped.items()]
        return self._pools

    def whole_free_by_node(self) -> dict[int | None, int]:
        """Free whole devices (PFs, devices without SR-IOV) per NUMA node (cached until ``take``)."""
        if self._whole is None:
            counts: dict[int | None, int] = {}
            for slot in self.free.values():
                if slot.dev_type is not DevType.VF:
                    counts[slot.numa_node] = counts.get(slot.numa_node, 0) + 1
            self._whole = counts
        return self._whole

    def take(
        self, addresses: Iterable[PciAddress], cpus_by_node: Mapping[int, int], memory_by_node: Mapping[int, int]
    ) -> None:
        """Account a placement locally (the database is the truth; this keeps the view close to it)."""
        for addr in addresses:
            slot = self.free.pop(addr)
            if slot.switch is not None:
                self.busy_switches.add(slot.switch)
            if slot.dev_type is DevType.VF and slot.parent_addr is not None:
                self.vfs_in_use[slot.parent_addr] = self.vfs_in_use.get(slot.parent_addr, 0) + 1
                self.free.pop(slot.parent_addr, None)  # the PF is unavailable while a VF is used
            elif slot.dev_type is DevType.PF:
                for vf in [a for a, s in self.free.items() if s.parent_addr == addr]:
                    del self.free[vf]
        for node, n in cpus_by_node.items():
            self.cells[node].used_cpus += n
        for node, n in memory_by_node.items():
            self.cells[node].used_memory_mb += n
        self._pools = None
        self._whole = None
