"""Inventory test fixtures: realistic reports built by the real discovery path from a simulated host."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from epa.discovery.sysfs import scan_sysfs
from epa.domain.device_spec import classify, parse_device_specs
from epa.domain.host import HostReport, NumaCell, parse_cpulist
from epa.inventory import Database
from epa.simulate.hosts import nfv_host, sriov_scale_host
from epa.simulate.model import SimHost
from epa.simulate.sysfs_tree import render_sysfs

# X710 PFs and VFs on physnet1, QAT endpoints and VFs, the T4. Root ports, NVMe and the ConnectX-5
# stay unassignable, so that reports carry both kinds.
DEVICE_SPECS: list[Any] = [
    {"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet1"},
    {"vendor_id": "8086", "product_id": "1572", "physical_network": "physnet1"},
    {"vendor_id": "8086", "product_id": "37c8"},
    {"vendor_id": "8086", "product_id": "37c9"},
    {"vendor_id": "10de", "product_id": "1eb8"},
]


def build_report(host: SimHost, root: Path, specs: list[Any] | None = None) -> HostReport:
    """Render ``host`` as /sys, scan it and classify what was found: what an agent would send."""
    scan = scan_sysfs(render_sysfs(host, root))
    classified, _warnings = classify(parse_device_specs(DEVICE_SPECS if specs is None else specs), scan.devices)
    cells = tuple(
        NumaCell(node, parse_cpulist(cpus), kib // 1024, socket=node)
        for node, (cpus, kib) in sorted(host.numa_cells.items())
    )
    return HostReport(cells, classified)


@pytest.fixture(scope="session")
def nfv_report(tmp_path_factory: pytest.TempPathFactory) -> HostReport:
    return build_report(nfv_host(), tmp_path_factory.mktemp("nfv") / "sys")


@pytest.fixture(scope="session")
def scale_report(tmp_path_factory: pytest.TempPathFactory) -> HostReport:
    """Eight E810 ports with 124 VFs each (1,000 functions and their root ports), VFs assignable."""
    host = sriov_scale_host(pfs=8, vfs_per_pf=124)
    return build_report(host, tmp_path_factory.mktemp("scale") / "sys", [{"vendor_id": "8086", "product_id": "1889"}])


@pytest.fixture
def count_queries(db: Database) -> Callable[[], contextlib.AbstractContextManager[list[str]]]:
    """``with count_queries() as statements:`` collects the SQL statements run inside the block."""

    @contextlib.contextmanager
    def counting() -> Iterator[list[str]]:
        statements: list[str] = []

        def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(db.engine, "before_cursor_execute", record)

    return counting
