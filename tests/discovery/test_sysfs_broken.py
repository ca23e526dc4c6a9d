"""Broken /sys trees: every missing, unreadable or garbage file is a warning naming it; the scan
carries on with what it could read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from epa.discovery.sysfs import scan_sysfs
from epa.domain.address import PciAddress
from epa.domain.device import DevType
from epa.errors import DiscoveryError

A = PciAddress.parse
VF = "0000:3d:01.0"
PF = "0000:3d:00.0"


def dev_dir(sys_root: Path, addr: str) -> Path:
    return (sys_root / "bus" / "pci" / "devices" / addr).resolve()


def replace(path: Path, content: bytes | None) -> None:
    """Replace a file by other bytes, or by a directory (which cannot be read as a file)."""
    path.unlink()
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)


def test_garbage_vendor_skips_that_device_only(nfv_sysfs: Path) -> None:
    replace(dev_dir(nfv_sysfs, VF) / "vendor", b"zzzz\n")
    result = scan_sysfs(nfv_sysfs)
    assert A(VF) not in result.by_address()
    assert A("0000:3d:01.1") in result.by_address()
    assert any(f"{VF}/vendor" in w and "'zzzz' is not a hex number" in w for w in result.warnings)
    assert any(f"skipped {VF}" in w for w in result.warnings)


def test_binary_junk_is_reported_not_decoded(nfv_sysfs: Path) -> None:
    replace(dev_dir(nfv_sysfs, VF) / "class", b"\xff\xfe\x00\x01junk")
    result = scan_sysfs(nfv_sysfs)
    assert A(VF) not in result.by_address()
    assert any(f"{VF}/class: not text" in w for w in result.warnings)


def test_missing_required_file_is_named(nfv_sysfs: Path) -> None:
    (dev_dir(nfv_sysfs, VF) / "device").unlink()
    result = scan_sysfs(nfv_sysfs)
    assert A(VF) not in result.by_address()
    assert any(f"{VF}/device: cannot read" in w for w in result.warnings)


def test_unreadable_optional_file_keeps_the_device(nfv_sysfs: Path) -> None:
    replace(dev_dir(nfv_sysfs, PF) / "numa_node", None)  # a directory: EISDIR on read
    result = scan_sysfs(nfv_sysfs)
    pf = result.by_address()[A(PF)]
    assert pf.numa_node is None
    assert pf.dev_type is DevType.PF
    assert any(f"{PF}/numa_node: cannot read" in w for w in result.warnings)


def test_garbage_numbers_are_warnings(nfv_sysfs: Path) -> None:
    replace(dev_dir(nfv_sysfs, PF) / "sriov_totalvfs", b"lots\n")
    replace(dev_dir(nfv_sysfs, VF) / "numa_node", b"zero\n")
    result = scan_sysfs(nfv_sysfs)
    found = result.by_address()
    assert found[A(PF)].sriov_totalvfs is None
    assert found[A(PF)].dev_type is DevType.PCI
    assert found[A(VF)].numa_node is None
    assert any(f"{PF}/sriov_totalvfs: 'lots' is not an integer" in w for w in result.warnings)
    assert any(f"{VF}/numa_node: 'zero' is not an integer" in w for w in result.warnings)
    # The VFs still name their PF, which no longer looks like one: said, not hidden.
    assert any(f"{VF}: physfn points to {PF}, which is not a PF here" in w for w in result.warnings)


def test_broken_bus_link_skips_the_entry(nfv_sysfs: Path) -> None:
    link = nfv_sysfs / "bus" / "pci" / "devices" / VF
    shutil.rmtree(dev_dir(nfv_sysfs, VF))
    result = scan_sysfs(nfv_sysfs)
    assert A(VF) not in result.by_address()
    assert any(str(link) in w and "does not resolve" in w for w in result.warnings)
    assert any(f"{PF}: VF {VF} is listed but not present" in w for w in result.warnings)


def test_looping_links_do_not_hang(nfv_sysfs: Path) -> None:
    bus = nfv_sysfs / "bus" / "pci" / "devices"
    os.symlink("0000:ff:1f.6", bus / "0000:ff:1f.7")
    os.symlink("0000:ff:1f.7", bus / "0000:ff:1f.6")
    iommu = dev_dir(nfv_sysfs, VF) / "iommu_group"
    iommu.unlink()
    os.symlink("iommu_group", iommu)  # a link to itself
    result = scan_sysfs(nfv_sysfs)
    assert A("0000:ff:1f.7") not in result.by_address()
    assert any("0000:ff:1f.7" in w and "does not resolve" in w for w in result.warnings)
    assert result.by_address()[A(VF)].iommu_group is None
    assert any(f"{VF}/iommu_group: link target 'iommu_group' is not a number" in w for w in result.warnings)


def test_entry_that_is_not_an_address(nfv_sysfs: Path) -> None:
    (nfv_sysfs / "bus" / "pci" / "devices" / "garbage").mkdir()
    result = scan_sysfs(nfv_sysfs)
    assert any("garbage: skipped, the name is not a PCI address" in w for w in result.warnings)
    assert len(result.devices) == 86


def test_physfn_to_a_missing_device(nfv_sysfs: Path) -> None:
    physfn = dev_dir(nfv_sysfs, VF) / "physfn"
    physfn.unlink()
    os.symlink("../0000:3d:00.5", physfn)
    result = scan_sysfs(nfv_sysfs)
    vf = result.by_address()[A(VF)]
    assert vf.parent_addr == A("0000:3d:00.5")
    assert any(f"{VF}: physfn points to 0000:3d:00.5" in w for w in result.warnings)


def test_no_pci_bus_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match=f"cannot list PCI devices in {tmp_path}/bus/pci/devices"):
        scan_sysfs(tmp_path)


def test_empty_bus_is_an_empty_host(tmp_path: Path) -> None:
    (tmp_path / "bus" / "pci" / "devices").mkdir(parents=True)
    result = scan_sysfs(tmp_path)
    assert (result.devices, result.warnings) == ((), ())


def test_a_vf_list_that_cannot_be_read_is_a_warning_naming_the_directory(tmp_path: Path) -> None:
    from epa.discovery.sysfs import _virtfns
    from epa.discovery.sysfs_read import AttrReader

    warnings: list[str] = []
    gone = tmp_path / "0000:3d:00.0"  # the directory went away between the bus listing and this read
    assert _virtfns(AttrReader(gone, warnings)) == ()
    assert len(warnings) == 1 and str(gone) in warnings[0] and "virtfn" in warnings[0]
