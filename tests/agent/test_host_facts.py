"""Host facts (NUMA cells, sockets, memory) read from simulated /sys trees and from this machine's /sys."""

from __future__ import annotations

import os
import re
from pathlib import Path

from epa.agent import read_host_facts
from epa.domain.host import parse_cpulist
from epa.simulate.hosts import nfv_host
from epa.simulate.model import SimHost
from epa.simulate.sysfs_tree import format_cpulist, render_sysfs


def proc_with_meminfo(tmp_path: Path, kib: int) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text(f"MemTotal:       {kib} kB\nMemFree:        1000 kB\n")
    return proc


def test_two_socket_host_has_one_cell_per_node_with_its_socket(nfv_sysfs: Path, tmp_path: Path) -> None:
    facts = read_host_facts(nfv_sysfs, tmp_path / "no-proc")
    cells = {c.node: c for c in facts.numa_cells}
    assert sorted(cells) == [0, 1]
    assert cells[0].cpus == (*range(0, 20), *range(40, 60))
    assert cells[1].cpus == (*range(20, 40), *range(60, 80))
    assert (cells[0].socket, cells[1].socket) == (0, 1)
    assert cells[0].memory_mb == cells[1].memory_mb == 196_608_000 // 1024
    assert facts.warnings == ()


def test_host_without_numa_nodes_is_one_cell_with_every_cpu(no_numa_sysfs: Path, tmp_path: Path) -> None:
    facts = read_host_facts(no_numa_sysfs, proc_with_meminfo(tmp_path, 16_384_000))
    assert len(facts.numa_cells) == 1
    cell = facts.numa_cells[0]
    assert (cell.node, cell.cpus, cell.memory_mb, cell.socket) == (0, (0, 1, 2, 3), 16_000, 0)
    assert any("no NUMA nodes" in w for w in facts.warnings)


def test_without_cpu_list_or_meminfo_falls_back_to_cpu_count_and_warns(tmp_path: Path) -> None:
    empty = tmp_path / "sys"
    empty.mkdir()
    facts = read_host_facts(empty, tmp_path / "missing-proc")
    (cell,) = facts.numa_cells
    assert cell.cpus == tuple(range(os.cpu_count() or 1))
    assert cell.memory_mb == 0 and cell.socket is None
    joined = "\n".join(facts.warnings)
    assert "os.cpu_count" in joined and str(tmp_path / "missing-proc" / "meminfo") in joined


def test_sub_numa_clustering_puts_two_nodes_on_one_socket(tmp_path: Path) -> None:
    host = SimHost("snc", numa_cells={n: (f"{n * 8}-{n * 8 + 7}", 1024 * 1024) for n in range(4)})
    host.node_sockets = {0: 0, 1: 0, 2: 1, 3: 1}
    facts = read_host_facts(render_sysfs(host, tmp_path / "sys"), tmp_path)
    assert [(c.node, c.socket, c.memory_mb) for c in facts.numa_cells] == [
        (0, 0, 1024),
        (1, 0, 1024),
        (2, 1, 1024),
        (3, 1, 1024),
    ]


def test_memory_only_node_has_no_cpus_and_no_socket(tmp_path: Path) -> None:
    host = SimHost("cxl", numa_cells={0: ("0-3", 2048 * 1024), 1: ("", 4096 * 1024)})
    facts = read_host_facts(render_sysfs(host, tmp_path / "sys"), tmp_path)
    assert [(c.node, c.cpus, c.socket, c.memory_mb) for c in facts.numa_cells] == [
        (0, (0, 1, 2, 3), 0, 2048),
        (1, (), None, 4096),
    ]


def test_garbage_files_give_warnings_naming_them(nfv_sysfs: Path, tmp_path: Path) -> None:
    node1 = nfv_sysfs / "devices" / "system" / "node" / "node1"
    (node1 / "cpulist").write_text("20-x\n")
    (nfv_sysfs / "devices/system/node/node0/meminfo").write_text("Node 0 MemFree: 5 kB\n")
    (nfv_sysfs / "devices/system/cpu/cpu0/topology/physical_package_id").write_text("socket?\n")
    facts = read_host_facts(nfv_sysfs, tmp_path)
    cells = {c.node: c for c in facts.numa_cells}
    assert cells[1].cpus == () and cells[1].memory_mb == 196_608_000 // 1024
    assert cells[0].memory_mb == 0 and cells[0].socket is None
    joined = "\n".join(facts.warnings)
    assert str(node1 / "cpulist") in joined
    assert "node0/meminfo" in joined and "MemTotal" in joined
    assert "cpu0/topology/physical_package_id" in joined and "'socket?'" in joined


def test_simulated_tree_links_nodes_and_cpus_like_the_kernel(nfv_sysfs: Path) -> None:
    system = nfv_sysfs / "devices" / "system"
    assert (system / "cpu" / "online").read_text().strip() == "0-79"
    assert (system / "node" / "online").read_text().strip() == "0-1"
    assert (system / "node" / "node1" / "cpu25").resolve() == (system / "cpu" / "cpu25").resolve()
    assert (system / "cpu" / "cpu25" / "node1").resolve() == (system / "node" / "node1").resolve()
    assert (system / "cpu/cpu25/topology/physical_package_id").read_text().strip() == "1"
    assert len(nfv_host().numa_cells) == 2


def test_format_cpulist_round_trips() -> None:
    for text in ("0-19,40-59", "0", "1,3,5-7", ""):
        assert format_cpulist(parse_cpulist(text)) == text


def test_real_sys_cells_cover_the_online_cpus_and_the_memory() -> None:
    facts = read_host_facts(Path("/sys"), Path("/proc"))
    cells = facts.numa_cells
    assert cells and [c.node for c in cells] == sorted({c.node for c in cells})
    cpus = sorted(c for cell in cells for c in cell.cpus)
    assert len(cpus) == len(set(cpus))
    online = Path("/sys/devices/system/cpu/online")
    if online.exists():
        assert set(parse_cpulist(online.read_text())) <= set(cpus)
    else:
        assert len(cpus) == os.cpu_count()
    match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    assert match is not None
    total_mb = int(match.group(1)) // 1024
    # Containers and VMs do not always make /sys and /proc agree, so no exact sum: each node's
    # memory is what its own meminfo says, and together they never exceed the machine's.
    assert 0 < sum(c.memory_mb for c in cells) <= total_mb * 1.05 + 64
    node_root = Path("/sys/devices/system/node")
    for cell in cells:
        meminfo = node_root / f"node{cell.node}" / "meminfo"
        if meminfo.exists():
            kib = re.search(rf"Node {cell.node} MemTotal:\s+(\d+) kB", meminfo.read_text())
            assert kib is not None and cell.memory_mb == int(kib.group(1)) // 1024
            cpulist = (node_root / f"node{cell.node}" / "cpulist").read_text()
            assert cell.cpus == parse_cpulist(cpulist)
        else:
            assert cell.memory_mb == total_mb
