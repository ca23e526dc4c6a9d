"""The sysfs and libvirt backends, reading one simulated host, report the same devices.

Fields only sysfs can give are listed in SYSFS_ONLY and checked on their own: libvirt reports no
subsystem ids and no e-switch id, and the test driver drops ``<driver>`` (real libvirt has it)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from epa.discovery import ScanResult
from epa.discovery.libvirt_nodedev import scan_libvirt
from epa.discovery.sysfs import scan_sysfs
from epa.domain import PciDevice
from epa.simulate import SimHost
from epa.simulate.hosts import gpu_host, nfv_host, no_numa_host
from epa.simulate.libvirt_node import write_node_xml
from epa.simulate.sysfs_tree import render_sysfs

SHARED = (
    "vendor_id",
    "product_id",
    "class_code",
    "dev_type",
    "parent_addr",
    "numa_node",
    "iommu_group",
    "sriov_totalvfs",
    "sriov_numvfs",
    "vf_addrs",
    "pci_root",
    "pcie_path",
    "vendor_name",
    "product_name",
)
SYSFS_ONLY = ("driver", "subsystem_vendor_id", "subsystem_product_id", "phys_switch_id")


def scan_both(host: SimHost, tmp_path: Path) -> tuple[ScanResult, ScanResult]:
    sysfs = scan_sysfs(render_sysfs(host, tmp_path / "sys"))
    libvirt = scan_libvirt(write_node_xml(host, tmp_path / "node.xml"))
    return sysfs, libvirt


HOSTS = [nfv_host(), no_numa_host(), gpu_host()]


def test_every_device_field_is_classified() -> None:
    # A new PciDevice field must be added to SHARED or SYSFS_ONLY (phys_switch_id is NetInterface's).
    classified = {"address", "netdevs", "warnings", *SHARED, *SYSFS_ONLY} - {"phys_switch_id"}
    assert {f.name for f in fields(PciDevice)} == classified


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.name)
def test_backends_report_the_same_devices(host: SimHost, tmp_path: Path) -> None:
    sysfs, libvirt = scan_both(host, tmp_path)
    assert sysfs.warnings == ()
    assert [w for w in libvirt.warnings if "switchdev" not in w] == []
    assert [d.address for d in sysfs.devices] == [d.address for d in libvirt.devices]
    by_libvirt = libvirt.by_address()
    for s in sysfs.devices:
        v = by_libvirt[s.address]
        for name in SHARED:
            assert getattr(s, name) == getattr(v, name), f"{s.address} {name}"
        assert [(n.name, n.mac, n.operstate) for n in s.netdevs] == [(n.name, n.mac, n.operstate) for n in v.netdevs], (
            f"{s.address} netdevs"
        )


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.name)
def test_sysfs_only_fields(host: SimHost, tmp_path: Path) -> None:
    sysfs, libvirt = scan_both(host, tmp_path)
    by_libvirt = libvirt.by_address()
    for s in sysfs.devices:
        fn = host.function(s.address)
        v = by_libvirt[s.address]
        assert s.driver == fn.driver
        assert v.driver is None  # the test driver drops <driver>
        assert s.subsystem_vendor_id == (fn.subsystem_vendor or fn.vendor)
        assert (v.subsystem_vendor_id, v.subsystem_product_id) == (None, None)
        assert [n.phys_switch_id for n in s.netdevs] == [
            n.phys_switch_id for n in sorted(fn.netdevs, key=lambda n: n.name)
        ]
        assert all(n.phys_switch_id is None for n in v.netdevs)
        # What libvirt does say of a switchdev NIC: a note that the switch id is sysfs's to give.
        assert s.switchdev == any("switchdev" in w for w in v.warnings)
