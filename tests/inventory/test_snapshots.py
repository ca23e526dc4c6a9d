"""Host snapshots for the scheduler: usage per NUMA node, free devices, split PFs, and versions - read
in a constant number of queries whatever the number of hosts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from epa.domain.address import PciAddress
from epa.domain.device import DevType
from epa.domain.flavor import Flavor
from epa.domain.host import HostReport
from epa.domain.server import ClaimedDevice
from epa.inventory import Database, apply_report, create_host, get_host, set_host_enabled
from epa.inventory import snapshots as snapshots_module
from epa.inventory.claims import ClaimPlan, NewServer, claim, release
from epa.inventory.snapshots import CellUsage, FreeDevice, host_versions, load_snapshots

PF = PciAddress.parse("0000:18:00.0")
VF0, VF1 = PciAddress.parse("0000:18:02.0"), PciAddress.parse("0000:18:02.1")
PF2_VF = PciAddress.parse("0000:18:0a.0")
T4 = PciAddress.parse("0000:af:00.0")


def seed(db: Database, report: HostReport, *names: str) -> None:
    for name in names:
        create_host(db, name)
        apply_report(db, name, 0, report)


def take(db: Database, host: str, addresses: list[PciAddress], vcpus: int = 4, memory_mb: int = 4096) -> str:
    server = NewServer("vm", Flavor(name="f", vcpus=vcpus, memory_mb=memory_mb))
    devices = tuple(ClaimedDevice(a, i, "r") for i, a in enumerate(addresses))
    return claim(db, server, ClaimPlan(host, (0,), {0: vcpus}, {0: memory_mb}, devices)).id


def test_a_fresh_host(db: Database, nfv_report: HostReport) -> None:
    seed(db, nfv_report, "nfv-1")
    (snap,) = load_snapshots(db)
    assignable = sum(1 for d in nfv_report.devices if d.assignable)
    assert (snap.name, snap.enabled, snap.generation, snap.claim_generation) == ("nfv-1", True, 1, 0)
    assert snap.last_report_at == get_host(db, "nfv-1").last_report_at
    assert snap.cells == (CellUsage(0, 0, 40, 192_000, 0, 0), CellUsage(1, 1, 40, 192_000, 0, 0))
    assert snap.assignable == assignable == len(snap.free)
    assert snap.vfs_in_use == ()
    by_address = {d.address: d for d in snap.free}
    assert by_address[VF0] == FreeDevice(
        VF0, "8086", "154c", DevType.VF, 0, PF, (("physical_network", "physnet1"),), True, "pci0000:17", None
    )
    # The QAT functions sit behind the simulated host's PCIe switch (upstream port 3b:00.0).
    qat = [d for d in snap.free if d.product_id == "37c9" and d.numa_node == 0]
    assert qat and {d.switch for d in qat} == {PciAddress.parse("0000:3b:00.0")}
    assert by_address[PF2_VF].has_netdev is False
    assert by_address[T4].dev_type is DevType.PCI and by_address[T4].numa_node == 1
    assert [d.address for d in snap.free] == sorted(by_address)


def test_snapshots_follow_claims_and_releases(db: Database, nfv_report: HostReport) -> None:
    seed(db, nfv_report, "nfv-1")
    (fresh,) = load_snapshots(db)
    server = take(db, "nfv-1", [VF0, VF1, T4], vcpus=6, memory_mb=8192)
    (snap,) = load_snapshots(db)
    assert snap.claim_generation == 1
    assert snap.cells[0] == CellUsage(0, 0, 40, 192_000, 6, 8192)
    assert snap.cells[1].used_cpus == 0
    free = {d.address for d in snap.free}
    assert free == {d.address for d in fresh.free} - {VF0, VF1, T4, PF}
    assert snap.vfs_in_use == ((PF, 2),)
    assert snap.assignable == fresh.assignable
    release(db, server)
    (after,) = load_snapshots(db)
    assert (after.cells, after.free, after.vfs_in_use) == (fresh.cells, fresh.free, fresh.vfs_in_use)
    assert after.claim_generation == 2


def test_hosts_without_a_report_disabled_hosts_and_names(db: Database, nfv_report: HostReport) -> None:
    seed(db, nfv_report, "b-host")
    create_host(db, "a-new")
    set_host_enabled(db, "b-host", False)
    new, disabled = load_snapshots(db)
    assert (new.name, new.cells, new.free, new.assignable, new.last_report_at) == ("a-new", (), (), 0, None)
    assert (disabled.name, disabled.enabled) == ("b-host", False)
    assert [s.name for s in load_snapshots(db, ["b-host", "b-host", "unknown"])] == ["b-host"]
    assert load_snapshots(db, []) == []


def test_names_are_read_in_chunks(db: Database, nfv_report: HostReport, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"nfv-{i}" for i in range(5)]
    seed(db, nfv_report, *names)
    take(db, "nfv-3", [T4])
    whole = load_snapshots(db)
    monkeypatch.setattr(snapshots_module, "CHUNK", 2)
    assert load_snapshots(db, names[::-1]) == whole
    assert load_snapshots(db, names[3:]) == whole[3:]


def test_snapshots_cost_the_same_for_one_host_or_many(
    db: Database, nfv_report: HostReport, count_queries: Callable[[], Any]
) -> None:
    seed(db, nfv_report, "nfv-0")
    take(db, "nfv-0", [VF0])
    with count_queries() as one:
        assert len(load_snapshots(db)) == 1
    with count_queries() as one_named:
        load_snapshots(db, ["nfv-0"])
    seed(db, nfv_report, "nfv-1", "nfv-2", "nfv-3", "nfv-4")
    for name in ("nfv-1", "nfv-2", "nfv-3"):
        take(db, name, [VF0, T4])
    with count_queries() as many:
        assert len(load_snapshots(db)) == 5
    with count_queries() as many_named:
        load_snapshots(db, ["nfv-1", "nfv-2", "nfv-3", "nfv-4"])
    assert len(one) == len(many)
    assert len(one_named) == len(many_named)
    with count_queries() as versions:
        host_versions(db)
    assert len([s for s in versions if s.lstrip().upper().startswith("SELECT")]) == 1


def test_host_versions(db: Database, nfv_report: HostReport) -> None:
    assert host_versions(db) == {}
    seed(db, nfv_report, "nfv-1")
    create_host(db, "nfv-2")
    assert host_versions(db) == {"nfv-1": (1, 0), "nfv-2": (0, 0)}
    server = take(db, "nfv-1", [T4])
    apply_report(db, "nfv-1", 1, nfv_report)
    assert host_versions(db)["nfv-1"] == (2, 1)
    release(db, server)
    assert host_versions(db)["nfv-1"] == (2, 2)


def test_a_switch_with_a_device_in_use_is_busy_until_the_device_is_released(
    db: Database, nfv_report: HostReport
) -> None:
    seed(db, nfv_report, "nfv-1")
    (fresh,) = load_snapshots(db)
    assert fresh.busy_switches == frozenset()
    qat = next(d.address for d in fresh.free if d.switch is not None)
    server = take(db, "nfv-1", [qat])
    (snap,) = load_snapshots(db)
    assert snap.busy_switches == {PciAddress.parse("0000:3b:00.0")}
    release(db, server)
    (after,) = load_snapshots(db)
    assert after.busy_switches == frozenset()
