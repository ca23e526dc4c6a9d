"""The agent binding a server's unmanaged devices (device_spec tag ``managed: no``) to vfio-pci itself,
through sysfs (``driver_override``, ``unbind``, ``drivers_probe``), and giving them back to their host
driver afterwards: what libvirt's node-device detach does, without needing libvirt's node-device driver
(the embedded ``qemu:///embed`` driver has none). A group another function keeps on a host driver is not
viable for VFIO, and is refused naming both; a function vfio-pci will not take (a PF with VFs) is given
back to its host driver and refused naming the cause."""

from __future__ import annotations

import os
from pathlib import Path

from epa.domain.address import PciAddress
from epa.errors import EpaError

VFIO_PCI = "vfio-pci"
# Functions that may share an IOMMU group with a passed-through one: no driver, or one that keeps it idle.
_HARMLESS = frozenset({VFIO_PCI, "pci-stub", "pcieport"})


class VfioBindError(EpaError):
    """A function could not be bound to vfio-pci or given back; the message names it and the cause."""

    code = "vfio_bind_failed"


class SysfsVfio:
    """Binds PCI functions of the ``/sys`` at ``sysfs_root`` to vfio-pci and back; ``/proc`` at
    ``procfs_root`` tells whether a process holds a function's VFIO group (then it is not given back)."""

    def __init__(self, sysfs_root: Path, procfs_root: Path = Path("/proc")) -> None:
        self.bus = sysfs_root / "bus" / "pci"
        self.proc = procfs_root

    def _holders(self, group: str) -> list[str]:
        holders = []
        for proc in self.proc.iterdir() if self.proc.is_dir() else ():
            if not proc.name.isdigit():
                continue
            try:
                targets = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
            except OSError:
                continue
            if f"/dev/vfio/{group}" in targets:
                holders.append(proc.name)
        return holders

    def _dir(self, address: PciAddress) -> Path:
        d = self.bus / "devices" / str(address)
        if not d.exists():
            raise VfioBindError(f"PCI device {address} is not on this host")
        return d

    @staticmethod
    def _driver(d: Path) -> str | None:
        link = d / "driver"
        return os.readlink(link).rsplit("/", 1)[-1] if link.is_symlink() else None

    def _write(self, path: Path, value: str, address: PciAddress, what: str) -> None:
        try:
            path.write_text(value)
        except OSError as e:
            raise VfioBindError(f"cannot {what} PCI device {address}: {path.name}: {e.strerror or e}") from e

    def check_group(self, address: PciAddress) -> None:
        """Raise unless every other function in ``address``'s IOMMU group is free for VFIO."""
        d = self._dir(address)
        group = d / "iommu_group"
        if not group.is_symlink():
            raise VfioBindError(f"PCI device {address} has no IOMMU group (is the IOMMU on? intel_iommu=on)")
        number = os.readlink(group).rsplit("/", 1)[-1]
        for member in sorted((group / "devices").iterdir()):
            if member.name == str(address):
                continue
            driver = self._driver(member)
            if driver is not None and driver not in _HARMLESS:
                raise VfioBindError(
                    f"PCI device {address}: IOMMU group {number} is not viable: {member.name} in the same group "
                    f"is bound to {driver}"
                )

    def detach(self, address: PciAddress) -> None:
        """Bind ``address`` to vfio-pci (a function already there is left as it is)."""
        d = self._dir(address)
        if not (self.bus / "drivers" / VFIO_PCI).is_dir():
            raise VfioBindError(
                f"cannot bind PCI device {address} to vfio-pci: the driver is not loaded (modprobe vfio-pci)"
            )
        self.check_group(address)
        bound = self._driver(d)
        if bound == VFIO_PCI:
            return
        self._write(d / "driver_override", VFIO_PCI, address, "bind to vfio-pci")
        if bound is not None:
            self._write(d / "driver" / "unbind", str(address), address, f"unbind from {bound}")
        self._write(self.bus / "drivers_probe", str(address), address, "bind to vfio-pci")
        now = self._driver(d)
        if now != VFIO_PCI:
            # The kernel's probe failed quietly (the write succeeds): say why where it is knowable, and
            # do not leave the function without a driver behind an override nobody clears.
            why = _refusal(d)
            self._write(d / "driver_override", "\n", address, "clear the driver override of")
            if now is None:
                self._write(self.bus / "drivers_probe", str(address), address, "give back")
            raise VfioBindError(f"PCI device {address}: vfio-pci did not take it (its driver is {now or 'none'}){why}")

    def reattach(self, address: PciAddress) -> None:
        """Give ``address`` back to whatever host driver the kernel probes for it; refused while a process
        holds its VFIO group (another domain's QEMU, or anyone's: what it holds is not ours to take)."""
        d = self._dir(address)
        group = d / "iommu_group"
        if group.is_symlink():
            number = os.readlink(group).rsplit("/", 1)[-1]
            holders = self._holders(number)
            if holders:
                raise VfioBindError(
                    f"PCI device {address} stays on vfio-pci: process {', '.join(holders)} holds /dev/vfio/{number}"
                )
        self._write(d / "driver_override", "\n", address, "clear the driver override of")
        if self._driver(d) == VFIO_PCI:
            self._write(d / "driver" / "unbind", str(address), address, "unbind from vfio-pci")
        self._write(self.bus / "drivers_probe", str(address), address, "give back")


def _refusal(d: Path) -> str:
    """Why vfio-pci's probe refuses the function at ``d``, for the causes sysfs shows (else empty)."""
    try:
        vfs = int((d / "sriov_numvfs").read_text().strip() or "0")
    except (OSError, ValueError):
        vfs = 0
    if vfs > 0:
        # vfio_pci_core: "Cannot bind to PF with SR-IOV enabled" (-EBUSY): the VFs may be in use elsewhere.
        return f": vfio-pci takes no PF with SR-IOV enabled (it has {vfs} VFs; pass a VF, or set sriov_numvfs to 0)"
    return ""
