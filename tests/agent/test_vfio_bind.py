"""The agent binding unmanaged devices to vfio-pci itself, on the simulated NFV host's /sys tree (real
directories and symlinks; the driver links do not move as the kernel's would, so what is asserted is what
the agent writes and refuses): an IOMMU group shared with a function on a host driver is not viable,
vfio-pci not loaded is an error naming the device, and give-back clears the override. The kernel's side is
in tests/lab (the embedded driver's NVMe VF)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from epa.agent.vfio_bind import SysfsVfio, VfioBindError
from epa.domain.address import PciAddress

GPU = PciAddress.parse("0000:af:00.0")  # the T4, on vfio-pci
VF = PciAddress.parse("0000:18:02.0")  # an X710 VF on iavf


def dev(sysfs: Path, address: PciAddress) -> Path:
    return sysfs / "bus" / "pci" / "devices" / str(address)


def test_a_group_shared_with_a_function_on_a_host_driver_is_not_viable(nfv_sysfs: Path) -> None:
    group = dev(nfv_sysfs, GPU) / "iommu_group"
    number = os.readlink(group).rsplit("/", 1)[-1]
    # put the VF (bound to iavf) in the T4's group, as a board without ACS would
    (group / "devices" / str(VF)).symlink_to(dev(nfv_sysfs, VF).resolve())
    with pytest.raises(VfioBindError) as caught:
        SysfsVfio(nfv_sysfs).detach(GPU)
    assert str(caught.value) == (
        f"PCI device {GPU}: IOMMU group {number} is not viable: {VF} in the same group is bound to iavf"
    )


def test_vfio_pci_not_loaded_is_an_error_naming_the_device(nfv_sysfs: Path) -> None:
    (nfv_sysfs / "bus" / "pci" / "drivers" / "vfio-pci").rename(nfv_sysfs / "unloaded")
    with pytest.raises(VfioBindError, match=f"cannot bind PCI device {VF} to vfio-pci: the driver is not loaded"):
        SysfsVfio(nfv_sysfs).detach(VF)


def test_binding_writes_the_override_unbinds_and_probes_and_a_driver_that_does_not_take_it_is_an_error(
    nfv_sysfs: Path,
) -> None:
    with pytest.raises(VfioBindError, match=f"PCI device {VF}: vfio-pci did not take it \\(its driver is iavf\\)$"):
        SysfsVfio(nfv_sysfs).detach(VF)  # the fake's driver link stays on iavf: the kernel's would move
    # the override was written, then cleared again: nothing is left that the next probe would obey
    assert (dev(nfv_sysfs, VF) / "driver_override").read_text() == "\n"
    assert (nfv_sysfs / "bus" / "pci" / "drivers" / "iavf" / "unbind").read_text() == str(VF)
    assert (nfv_sysfs / "bus" / "pci" / "drivers_probe").read_text() == str(VF)


def test_a_pf_with_vfs_that_vfio_pci_refuses_is_given_back_and_the_error_says_why(nfv_sysfs: Path) -> None:
    pf = dev(nfv_sysfs, VF).joinpath("physfn").resolve()
    address = PciAddress.parse(pf.name)
    vfs = int((pf / "sriov_numvfs").read_text())
    assert vfs > 0
    # the kernel's vfio-pci probe fails (-EBUSY) and the function is left without a driver
    (pf / "driver").unlink()
    with pytest.raises(VfioBindError) as caught:
        SysfsVfio(nfv_sysfs).detach(address)
    assert str(caught.value) == (
        f"PCI device {address}: vfio-pci did not take it (its driver is none): vfio-pci takes no PF with SR-IOV "
        f"enabled (it has {vfs} VFs; pass a VF, or set sriov_numvfs to 0)"
    )
    assert (pf / "driver_override").read_text() == "\n"  # and probed again, for its host driver
    assert (nfv_sysfs / "bus" / "pci" / "drivers_probe").read_text() == str(address)


def test_a_function_already_on_vfio_pci_is_left_and_give_back_clears_its_override(nfv_sysfs: Path) -> None:
    vfio = SysfsVfio(nfv_sysfs)
    vfio.detach(GPU)
    assert not (dev(nfv_sysfs, GPU) / "driver_override").exists()
    vfio.reattach(GPU)
    assert (dev(nfv_sysfs, GPU) / "driver_override").read_text() == "\n"
    assert (nfv_sysfs / "bus" / "pci" / "drivers" / "vfio-pci" / "unbind").read_text() == str(GPU)


def test_a_device_the_host_does_not_have_is_named(nfv_sysfs: Path) -> None:
    with pytest.raises(VfioBindError, match=r"PCI device 0000:99:00\.0 is not on this host"):
        SysfsVfio(nfv_sysfs).detach(PciAddress.parse("0000:99:00.0"))


def test_a_function_whose_group_a_process_holds_is_not_given_back(nfv_sysfs: Path, tmp_path: Path) -> None:
    number = os.readlink(dev(nfv_sysfs, GPU) / "iommu_group").rsplit("/", 1)[-1]
    fd = tmp_path / "proc" / "4242" / "fd"
    fd.mkdir(parents=True)
    (fd / "7").symlink_to(f"/dev/vfio/{number}")
    with pytest.raises(VfioBindError, match=f"stays on vfio-pci: process 4242 holds /dev/vfio/{number}"):
        SysfsVfio(nfv_sysfs, tmp_path / "proc").reattach(GPU)
    assert not (dev(nfv_sysfs, GPU) / "driver_override").exists()
