"""The real /sys of the machine the tests run on, checked against lspci (pciutils) and the raw files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from epa.discovery.pci_ids import load_pci_ids
from epa.discovery.sysfs import scan_sysfs
from epa.domain.address import PciAddress

SYS = Path("/sys")


def test_real_sysfs_matches_the_bus_listing() -> None:
    result = scan_sysfs(SYS)
    listed = {PciAddress.parse(n) for n in os.listdir(SYS / "bus" / "pci" / "devices")}
    assert {d.address for d in result.devices} == listed
    for d in result.devices:
        base = SYS / "bus" / "pci" / "devices" / str(d.address)
        assert int((base / "vendor").read_text(), 16) == int(d.vendor_id, 16)
        assert int((base / "device").read_text(), 16) == int(d.product_id, 16)
        assert int((base / "class").read_text(), 16) == int(d.class_code, 16)


def test_real_sysfs_matches_lspci() -> None:
    lspci = shutil.which("lspci")
    assert lspci, "lspci (Debian package pciutils) is needed; ./dev test installs it"
    out = subprocess.run([lspci, "-Dn"], check=True, capture_output=True, text=True).stdout
    expected = {}
    for line in out.splitlines():
        addr, cls, ids = line.split()[:3]
        expected[PciAddress.parse(addr)] = (cls.rstrip(":"), ids)
    found = scan_sysfs(SYS).by_address()
    assert set(found) == set(expected)
    for addr, (cls, ids) in expected.items():
        assert found[addr].class_code[:4] == cls
        assert f"{found[addr].vendor_id}:{found[addr].product_id}" == ids


def test_real_netdevs_are_seen() -> None:
    found = scan_sysfs(SYS, load_pci_ids()).devices
    real_ifaces = set()
    for name in os.listdir(SYS / "class" / "net"):
        dev = SYS / "class" / "net" / name / "device"
        if (dev.exists() and (dev / "vendor").exists()) or (dev.exists() and (dev / ".." / "vendor").exists()):
            real_ifaces.add(name)
    seen = {n.name for d in found for n in d.netdevs}
    assert seen == real_ifaces
