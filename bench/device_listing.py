"""Listing the inventory of 10,000 hosts with small NFV-like inventories (about 31 PCI functions each,
10 to 57), on SQLite and PostgreSQL: all hosts, every device page by page, one host's free VFs, and
the full device listing over HTTP."""

from __future__ import annotations

import contextlib
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.inventory_ingest import api_server, build_report, databases, measure, result_name, scaled
from bench.report import emit, summary
from epa.client import ApiClient
from epa.domain.address import PciAddress
from epa.domain.device import DevType
from epa.domain.host import HostReport
from epa.domain.status import DeviceStatus
from epa.inventory import Database, apply_report, create_host, list_devices, list_hosts, set_device_status
from epa.simulate.hosts import (
    CLASS_3D,
    CLASS_COPROCESSOR,
    CLASS_ETHERNET,
    CLASS_HOST_BRIDGE,
    CLASS_NVME,
    INTEL,
    MELLANOX,
    NVIDIA,
    HostBuilder,
)
from epa.simulate.model import SimHost, SimNet

HOSTS = 10_000
PAGE = 10_000  # the API's largest page
# X710 ports and their VFs on physnet1, ConnectX-5 VFs on physnet2, QAT and the T4: what an NFV
# operator passes through. Root ports, host bridges and NVMe stay unassignable.
SPECS = [
    '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet1", "trusted": "true"}',
    '{"vendor_id": "8086", "product_id": "1572", "physical_network": "physnet1"}',
    '{"vendor_id": "15b3", "product_id": "1018", "physical_network": "physnet2"}',
    '{"vendor_id": "8086", "product_id": "37c8"}',
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"vendor_id": "10de", "product_id": "1eb8"}',
]


@dataclass(frozen=True)
class Profile:
    """A kind of server in the fleet: how many VFs each X710 port and QAT endpoint has, and what else."""

    name: str
    x710_vfs: tuple[int, int]
    qat_vfs: tuple[int, ...] = ()
    cx5_vfs: int | None = None
    gpu: bool = False


# One host in ten of each line: 10, 20, 20, 32, 32, 32, 47, 47, 57 and 10 functions (30.7 on average).
FLEET = (
    Profile("edge", (2, 2)),
    Profile("compute", (4, 4), (4,)),
    Profile("compute", (4, 4), (4,)),
    Profile("nfv-s", (8, 8), (8,)),
    Profile("nfv-s", (8, 8), (8,)),
    Profile("nfv-s", (8, 8), (8,)),
    Profile("nfv-m", (8, 8), (8, 8), cx5_vfs=4),
    Profile("nfv-m", (8, 8), (8, 8), cx5_vfs=4),
    Profile("nfv-l", (16, 8), (8, 8), cx5_vfs=4, gpu=True),
    Profile("edge", (2, 2)),
)
PROBE = 6  # an nfv-m host (FLEET[6]): the one whose free VFs the filtered listing asks for


def server(p: Profile) -> SimHost:
    """A two-socket server of profile ``p``: X710 pair and QAT on socket 0, the rest on socket 1."""
    b = HostBuilder(p.name)
    b.host.numa_cells = {0: ("0-15,32-47", 98_304_000), 1: ("16-31,48-63", 98_304_000)}
    b.add("0000:00:00.0", INTEL, "2020", CLASS_HOST_BRIDGE, root="pci0000:00", numa=0)
    port = b.root_port("0000:17:00.0", "pci0000:17", 0)
    for func, count, driver in zip((0, 1), p.x710_vfs, ("iavf", "vfio-pci"), strict=True):
        name = f"ens785f{func}"
        pf = b.add(
            f"0000:18:00.{func}",
            INTEL,
            "1572",
            CLASS_ETHERNET,
            root="pci0000:17",
            upstream=port,
            numa=0,
            driver="i40e",
            sriov_totalvfs=64,
            subsystem_device="0007",
            netdevs=[SimNet(name, b.mac())],
        )
        b.vfs(pf, count, "154c", PciAddress(0, 0x18, 2 + 8 * func, 0), [driver], netdev_prefix=name)
    for i, count in enumerate(p.qat_vfs):
        bus = 0x3D + 2 * i
        port = b.root_port(f"0000:{bus - 1:02x}:00.0", f"pci0000:{bus - 1:02x}", 0)
        qat = b.add(
            f"0000:{bus:02x}:00.0",
            INTEL,
            "37c8",
            CLASS_COPROCESSOR,
            root=f"pci0000:{bus - 1:02x}",
            upstream=port,
            numa=0,
            driver="c6xx",
            sriov_totalvfs=16,
        )
        b.vfs(qat, count, "37c9", PciAddress(0, bus, 1, 0), ["vfio-pci"])
    if p.cx5_vfs is not None:
        port = b.root_port("0000:5d:00.0", "pci0000:5d", 1)
        cx5 = b.add(
            "0000:5e:00.0",
            MELLANOX,
            "1017",
            CLASS_ETHERNET,
            root="pci0000:5d",
            upstream=port,
            numa=1,
            driver="mlx5_core",
            sriov_totalvfs=8,
            netdevs=[SimNet("enp94s0f0np0", b.mac("b8:ce:f6"))],
        )
        b.vfs(cx5, p.cx5_vfs, "1018", PciAddress.parse("0000:5e:00.2"), ["vfio-pci"])
    if p.gpu:
        port = b.root_port("0000:ae:00.0", "pci0000:ae", 1)
        b.add("0000:af:00.0", NVIDIA, "1eb8", CLASS_3D, root="pci0000:ae", upstream=port, numa=1, driver="vfio-pci")
    port = b.root_port("0000:b0:00.0", "pci0000:b0", 1)
    b.add("0000:b1:00.0", INTEL, "0a54", CLASS_NVME, root="pci0000:b0", upstream=port, numa=1, driver="nvme")
    return b.host


def host_name(i: int) -> str:
    return f"{FLEET[i % len(FLEET)].name}-{i:05d}"


@dataclass
class Fleet:
    hosts: int
    devices: int
    writers: int
    seed_s: float
    probe: str  # the host of the filtered listing
    probe_free_vfs: int


def seed(db: Database, reports: list[HostReport], hosts: int) -> Fleet:
    """Create ``hosts`` hosts and send each its first report, as ``epa host create`` and an agent would.

    PostgreSQL takes two writers (its server process works while Python builds the next statement);
    SQLite has one write lock, so one."""
    writers = 2 if db.dialect == "postgresql" else 1

    def one(i: int) -> int:
        name = host_name(i)
        create_host(db, name)
        report = reports[i % len(reports)]
        apply_report(db, name, 0, report)
        return len(report.devices)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        devices = sum(pool.map(one, range(hosts)))
    seed_s = time.perf_counter() - t0
    # A VM on the probe host holds two of its VFs, so that status=available leaves something out.
    probe = host_name(len(FLEET) * (hosts // len(FLEET) // 2) + PROBE)
    vfs = [c.device for c in reports[PROBE].devices if c.device.dev_type is DevType.VF and c.assignable]
    for vf in (vfs[0], vfs[-1]):
        for status in (DeviceStatus.CLAIMED, DeviceStatus.ALLOCATED):
            set_device_status(db, probe, vf.address, status, owner="vm-0001")
    if db.dialect == "postgresql":
        # What autovacuum does a minute or so after a bulk load. Without fresh statistics the planner
        # sorts every page of the listing from a sequential scan of all devices, and the timings
        # would depend on whether autovacuum happened to run yet. (Maintenance, not schema SQL.)
        with db.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    return Fleet(hosts, devices, writers, seed_s, probe, len(vfs) - 2)


def device_pages(db: Database) -> Iterator[int]:
    """Every device, one ``list_devices`` page at a time: yields each page's size."""
    marker = None
    while True:
        page, marker = list_devices(db, limit=PAGE, marker=marker)
        yield len(page)
        if marker is None:
            return


def http_pages(client: ApiClient) -> Iterator[int]:
    """Every device through GET /v1/devices; the client fetches a page per PAGE devices taken."""
    devices = client.iter_devices(page_size=PAGE)
    while True:
        n = sum(1 for _ in itertools.islice(devices, PAGE))
        if n == 0:
            return
        yield n
        if n < PAGE:
            return


def row(backend: str, what: str, items: int, per: str, samples: list[float], total_s: float) -> dict[str, object]:
    s = summary(samples)
    return {
        "backend": backend,
        "operation": what,
        "items": items,
        "timed": per,
        "runs": s["runs"],
        "min_ms": s["min_ms"],
        "p50_ms": s["p50_ms"],
        "p90_ms": s["p90_ms"],
        "total_ms": total_s * 1e3,
        "items_per_s": items / total_s,
    }


def calls(backend: str, what: str, fn: Callable[[], int], expected: int, runs: int) -> dict[str, object]:
    """A row for ``runs`` calls of ``fn``, which returns how many items it listed (must be ``expected``)."""

    def checked() -> None:
        got = fn()
        if got != expected:
            raise SystemExit(f"{what}: listed {got} items, expected {expected}")

    samples = measure(checked, scaled(runs, 3), warmup=1)
    return row(backend, what, expected, "call", samples, statistics.median(samples))


def pages(backend: str, what: str, make: Callable[[], Iterator[int]], expected: int, passes: int) -> dict[str, object]:
    """A row for ``passes`` walks through all pages: p50/p90 per page, total per walk (the mean)."""
    samples: list[float] = []
    totals: list[float] = []
    for _ in range(passes):
        listed = 0
        walk = make()
        t_walk = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            n = next(walk, None)
            if n is None:
                break
            samples.append(time.perf_counter() - t0)
            listed += n
        totals.append(time.perf_counter() - t_walk)
        if listed != expected:
            raise SystemExit(f"{what}: listed {listed} items, expected {expected}")
    return row(backend, what, expected, f"page of {PAGE}", samples, statistics.mean(totals))


def bench_backend(backend: str, db: Database, reports: list[HostReport], data_dir: Path) -> list[dict[str, Any]]:
    fleet = seed(db, reports, scaled(HOSTS, len(FLEET)))
    print(
        f"{backend}: seeded {fleet.hosts} hosts, {fleet.devices} devices in {fleet.seed_s:.1f} s "
        f"({fleet.devices / fleet.seed_s:.0f} devices/s, {fleet.writers} writer(s))",
        file=sys.stderr,
        flush=True,
    )
    seeding = f"seed: create_host + first apply_report per host, {fleet.writers} writer(s)"
    rows = [row(backend, seeding, fleet.devices, "all", [fleet.seed_s], fleet.seed_s)]
    rows.append(calls(backend, "list_hosts", lambda: len(list_hosts(db)), fleet.hosts, 5))
    rows.append(pages(backend, "list_devices, all", lambda: device_pages(db), fleet.devices, 2))

    def free_vfs() -> int:
        page, _ = list_devices(db, host=fleet.probe, status=DeviceStatus.AVAILABLE, dev_type=DevType.VF)
        return len(page)

    what = "list_devices host=H status=available dev_type=type-VF"
    rows.append(calls(backend, what, free_vfs, fleet.probe_free_vfs, 50))
    with api_server(db, data_dir) as api, ApiClient(api.url, api.admin_token, timeout=300) as client:
        rows.append(calls(backend, "GET /v1/hosts", lambda: len(client.list_hosts()), fleet.hosts, 5))
        rows.append(pages(backend, "GET /v1/devices, all", lambda: http_pages(client), fleet.devices, 1))
    return rows


def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="epa-bench-") as tmp_name:
        tmp = Path(tmp_name)
        reports = [build_report(server(p), tmp / f"sys-{i}", SPECS) for i, p in enumerate(FLEET)]
        rows: list[dict[str, Any]] = []
        with contextlib.closing(databases(tmp, "epa_bench_listing")) as dbs:
            for backend, db in dbs:
                rows += bench_backend(backend, db, reports, tmp / f"serve-{backend}")
    emit(
        result_name("device_listing"),
        f"Inventory: listing {rows[0]['items']} devices of {scaled(HOSTS, len(FLEET))} hosts "
        f"(whole benchmark {time.perf_counter() - t0:.0f} s)",
        rows,
    )


if __name__ == "__main__":
    main()
