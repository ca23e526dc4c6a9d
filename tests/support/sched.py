"""Scheduler host states built from simulated hosts the way the service builds them from the inventory."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from epa.discovery.sysfs import scan_sysfs
from epa.domain.address import PciAddress
from epa.domain.device import DevType
from epa.domain.device_spec import classify, parse_device_specs
from epa.domain.host import parse_cpulist
from epa.domain.pci_group import switch_of
from epa.scheduler.host_state import Cell, HostState, Slot
from epa.simulate.model import SimHost
from epa.simulate.sysfs_tree import render_sysfs

NOW = 1_000_000.0


def host_state(
    sim: SimHost,
    root: Path,
    specs: list[str],
    *,
    name: str | None = None,
    in_use: Iterable[str] = (),
    cells: dict[int, tuple[int, int, int | None]] | None = None,
    enabled: bool = True,
    last_report: float | None = NOW,
) -> HostState:
    """``cells``: node -> (cpus, memory_mb, socket); default from the simulated host's NUMA cells
    (memory in MB), or one cell 0 with 16 CPUs and 64 GB for a host without NUMA information."""
    tree = render_sysfs(sim, root / (name or sim.name))
    devices = scan_sysfs(tree).devices
    classified, _ = classify(parse_device_specs(specs), devices)
    used = {PciAddress.parse(a) for a in in_use}
    by_addr = {c.device.address: c for c in classified}
    blocked: set[PciAddress] = set()
    vfs_in_use: dict[PciAddress, int] = {}
    for addr in used:
        dev = by_addr[addr].device
        if dev.dev_type is DevType.VF and dev.parent_addr is not None:
            vfs_in_use[dev.parent_addr] = vfs_in_use.get(dev.parent_addr, 0) + 1
            blocked.add(dev.parent_addr)
        blocked.update(dev.vf_addrs)
    free = [
        Slot(
            address=c.device.address,
            vendor_id=c.device.vendor_id,
            product_id=c.device.product_id,
            dev_type=c.device.dev_type,
            numa_node=c.device.numa_node,
            parent_addr=c.device.parent_addr,
            tags=tuple(sorted(c.tags.items())),
            has_netdev=bool(c.device.netdevs),
            root=c.device.pci_root,
            switch=switch_of(c.device.pcie_path),
        )
        for c in classified
        if c.assignable and c.device.address not in used and c.device.address not in blocked
    ]
    if cells is None:
        cells = {
            node: (len(parse_cpulist(cpulist)), kib // 1024, sim.socket_of(node))
            for node, (cpulist, kib) in sim.numa_cells.items()
        } or {0: (16, 65536, None)}
    return HostState.build(
        name or sim.name,
        enabled,
        last_report,
        [Cell(node, cpus, mem, socket) for node, (cpus, mem, socket) in cells.items()],
        free,
        vfs_in_use,
        sum(1 for c in classified if c.assignable),
        busy_switches={s for a in used if (s := switch_of(by_addr[a].device.pcie_path)) is not None},
    )
