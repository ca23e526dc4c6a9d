"""Render a simulated host as a ``/sys``-shaped tree, the way the kernel lays it out.

Every link the kernel makes is a real relative symlink here: ``bus/pci/devices/ADDR`` into
``devices/pciDDDD:BB/...``, ``driver`` into ``bus/pci/drivers/NAME``, ``iommu_group`` into
``kernel/iommu_groups/N``, ``physfn`` and ``virtfnN`` between a PF and its VFs."""

from __future__ import annotations

import os
from pathlib import Path

from epa.domain.address import PciAddress
from epa.domain.host import format_cpulist, parse_cpulist
from epa.simulate.model import SimFunction, SimHost


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, link.parent), link)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def device_dir(host: SimHost, fn: SimFunction, root: Path) -> Path:
    """Where the kernel puts ``fn``: under its root complex and every bridge above it."""
    path = root / "devices" / fn.root
    for bridge in host.chain(fn):
        path /= str(bridge.address)
    return path / str(fn.address)


def render_sysfs(host: SimHost, root: Path) -> Path:
    """Write ``host`` under ``root`` (which may exist and be empty) and return ``root``."""
    pci_bus = root / "bus" / "pci"
    (pci_bus / "devices").mkdir(parents=True, exist_ok=True)
    (pci_bus / "drivers").mkdir(parents=True, exist_ok=True)
    (root / "kernel" / "iommu_groups").mkdir(parents=True, exist_ok=True)
    (root / "class" / "net").mkdir(parents=True, exist_ok=True)
    dirs: dict[PciAddress, Path] = {fn.address: device_dir(host, fn, root) for fn in host.functions}
    for fn in host.functions:
        d = dirs[fn.address]
        d.mkdir(parents=True, exist_ok=True)
        _write(d / "vendor", f"0x{fn.vendor}")
        _write(d / "device", f"0x{fn.device}")
        _write(d / "class", f"0x{fn.class_code}")
        _write(d / "subsystem_vendor", f"0x{fn.subsystem_vendor or fn.vendor}")
        _write(d / "subsystem_device", f"0x{fn.subsystem_device or '0000'}")
        if fn.numa_node is not None:
            _write(d / "numa_node", str(fn.numa_node))
        _link(pci_bus / "devices" / str(fn.address), d)
        _link(d / "subsystem", pci_bus)
        if fn.driver:
            drv = pci_bus / "drivers" / fn.driver
            drv.mkdir(exist_ok=True)
            _link(d / "driver", drv)
            _link(drv / str(fn.address), d)
        if fn.iommu_group is not None:
            group = root / "kernel" / "iommu_groups" / str(fn.iommu_group)
            _link(group / "devices" / str(fn.address), d)
            _link(d / "iommu_group", group)
        for net in fn.netdevs:
            nd = d / "net" / net.name
            _write(nd / "address", net.mac)
            _write(nd / "operstate", net.operstate)
            if net.phys_switch_id:
                _write(nd / "phys_switch_id", net.phys_switch_id)
            if net.phys_port_name:
                _write(nd / "phys_port_name", net.phys_port_name)
            _link(nd / "device", d)
            _link(root / "class" / "net" / net.name, nd)
    for fn in host.functions:
        d = dirs[fn.address]
        if fn.sriov_totalvfs is not None:
            vfs = host.vfs_of(fn.address)
            _write(d / "sriov_totalvfs", str(fn.sriov_totalvfs))
            _write(d / "sriov_numvfs", str(len(vfs)))
            for i, vf in enumerate(vfs):
                _link(d / f"virtfn{i}", dirs[vf.address])
        if fn.physfn is not None:
            _link(d / "physfn", dirs[fn.physfn])
    for node, (cpulist, mem_kib) in sorted(host.numa_cells.items()):
        nd = root / "devices" / "system" / "node" / f"node{node}"
        _write(nd / "cpulist", cpulist)
        _write(nd / "meminfo", f"Node {node} MemTotal:       {mem_kib} kB")
    _render_cpus(host, root)
    return root


def _render_cpus(host: SimHost, root: Path) -> None:
    """CPU topology as the kernel shows it: ``cpu/cpuN/topology/physical_package_id``, the
    ``cpu/online`` list, and the ``node/nodeN/cpuM`` and ``cpu/cpuM/nodeN`` links between them."""
    system = root / "devices" / "system"
    # cpu -> (node or None, socket)
    placement: dict[int, tuple[int | None, int]] = {}
    if host.numa_cells:
        for node, (cpulist, _) in host.numa_cells.items():
            for cpu in parse_cpulist(cpulist, f"{host.name}: numa_cells[{node}]"):
                placement[cpu] = (node, host.socket_of(node))
    else:
        for cpu in parse_cpulist(host.online_cpus, f"{host.name}: online_cpus"):
            placement[cpu] = (None, 0)
    for name in ("online", "possible", "present"):
        _write(system / "cpu" / name, format_cpulist(placement))
    for cpu, (cpu_node, socket) in sorted(placement.items()):
        cpu_dir = system / "cpu" / f"cpu{cpu}"
        _write(cpu_dir / "topology" / "physical_package_id", str(socket))
        if cpu_node is not None:
            node_dir = system / "node" / f"node{cpu_node}"
            _link(node_dir / f"cpu{cpu}", cpu_dir)
            _link(cpu_dir / f"node{cpu_node}", node_dir)
    if host.numa_cells:
        for name in ("online", "possible"):
            _write(system / "node" / name, format_cpulist(host.numa_cells))
