"""Read a host's NUMA cells (CPUs, memory, socket) from a ``/sys``-shaped tree and ``/proc``.

Both roots are parameters. As in discovery, a file that is missing or garbage gives a warning naming
it and the read carries on; a host whose kernel shows no NUMA nodes is one cell, node 0, with every
online CPU and all of the memory."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from epa.domain.host import NumaCell, parse_cpulist
from epa.errors import InvalidInput

_NODE_DIR = re.compile(r"node(\d+)")
_NODE_MEMTOTAL = re.compile(r"Node\s+(\d+)\s+MemTotal:\s+(\d+)\s+kB")
_PROC_MEMTOTAL = re.compile(r"MemTotal:\s+(\d+)\s+kB")


@dataclass(frozen=True, slots=True)
class HostFacts:
    """The host's NUMA cells, by node id, and one warning per thing that could not be read."""

    numa_cells: tuple[NumaCell, ...]
    warnings: tuple[str, ...] = ()


def _read(path: Path, warnings: list[str]) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as e:
        warnings.append(f"{path}: cannot read ({e.strerror or e})")
        return None


def _cpus(path: Path, warnings: list[str]) -> tuple[int, ...] | None:
    text = _read(path, warnings)
    if text is None:
        return None
    try:
        # Sorted and distinct whatever the file says: a NumaCell refuses repeats.
        return tuple(sorted(set(parse_cpulist(text, str(path)))))
    except InvalidInput as e:
        warnings.append(f"{e}; its CPUs are left out")
        return None


def _socket(sysfs_root: Path, cpus: tuple[int, ...], warnings: list[str]) -> int | None:
    """The physical package of the first CPU (a NUMA node never spans sockets)."""
    if not cpus:
        return None
    path = sysfs_root / "devices" / "system" / "cpu" / f"cpu{cpus[0]}" / "topology" / "physical_package_id"
    text = _read(path, warnings)
    if text is None:
        return None
    value = text.strip()
    # The kernel writes -1 where the firmware gives no package id.
    if not value.isdigit():
        if value != "-1":
            warnings.append(f"{path}: {value!r} is not a socket number")
        return None
    return int(value)


def _node_memory_mb(path: Path, node: int, warnings: list[str]) -> int:
    text = _read(path, warnings)
    if text is None:
        return 0
    for match in _NODE_MEMTOTAL.finditer(text):
        if int(match.group(1)) == node:
            return int(match.group(2)) // 1024
    warnings.append(f"{path}: no 'Node {node} MemTotal: N kB' line; memory_mb is 0")
    return 0


def _node_dirs(node_root: Path) -> list[tuple[int, Path]]:
    try:
        names = os.listdir(node_root)
    except OSError:
        return []
    found = [(int(m.group(1)), node_root / n) for n in names if (m := _NODE_DIR.fullmatch(n))]
    return sorted(found)


def _single_cell(sysfs_root: Path, procfs_root: Path, warnings: list[str]) -> NumaCell:
    online = sysfs_root / "devices" / "system" / "cpu" / "online"
    cpus = _cpus(online, warnings) if online.exists() else None
    if cpus is None:
        count = os.cpu_count() or 1
        warnings.append(f"{online}: no online CPU list; assuming CPUs 0-{count - 1} (os.cpu_count)")
        cpus = tuple(range(count))
    meminfo = procfs_root / "meminfo"
    memory_mb = 0
    text = _read(meminfo, warnings)
    if text is not None:
        match = _PROC_MEMTOTAL.search(text)
        if match is None:
            warnings.append(f"{meminfo}: no 'MemTotal: N kB' line; memory_mb is 0")
        else:
            memory_mb = int(match.group(1)) // 1024
    return NumaCell(node=0, cpus=cpus, memory_mb=memory_mb, socket=_socket(sysfs_root, cpus, warnings))


def read_host_facts(sysfs_root: Path = Path("/sys"), procfs_root: Path = Path("/proc")) -> HostFacts:
    """The NUMA cells of the host whose ``/sys`` is ``sysfs_root`` and ``/proc`` is ``procfs_root``."""
    warnings: list[str] = []
    node_root = sysfs_root / "devices" / "system" / "node"
    cells: list[NumaCell] = []
    for node, path in _node_dirs(node_root):
        cpus = _cpus(path / "cpulist", warnings) or ()
        memory_mb = _node_memory_mb(path / "meminfo", node, warnings)
        cells.append(NumaCell(node, cpus, memory_mb, _socket(sysfs_root, cpus, warnings)))
    if not cells:
        warnings.append(f"{node_root}: no NUMA nodes; reporting one cell (node 0) with every CPU")
        cells.append(_single_cell(sysfs_root, procfs_root, warnings))
    return HostFacts(tuple(cells), tuple(warnings))
