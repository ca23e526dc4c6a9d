"""Declarative VF provisioning (what the SR-IOV network operator does, without draining the host): make
each configured PF have its ``num_vfs`` VFs, bound to the driver asked for, through sysfs
(``sriov_numvfs``, ``sriov_drivers_autoprobe``, ``driver_override``, ``drivers_probe``). Level-triggered:
run before every scan, it writes nothing when the host already matches. A VF in use (its IOMMU group
held open by a process: QEMU) is never unbound, and a count that would remove VFs in use is refused."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from epa.config.sriov import VfDriver, VfProvision
from epa.discovery import ScanResult
from epa.errors import EpaError

log = logging.getLogger("epa.agent.sriov")

VFIO_PCI = "vfio-pci"


class ProvisionError(EpaError):
    """A PF could not be made what the config asks; the message names the PF and the value."""

    code = "vf_provisioning_failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one pass did (``actions``, one line each) and what it could not (``errors``, per PF)."""

    actions: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


class Sysfs:
    """The PCI part of a ``/sys`` tree at ``root``, and the ``/proc`` at ``proc`` (to tell a VF in use)."""

    def __init__(self, root: Path, proc: Path) -> None:
        self.root, self.proc = root, proc
        self.devices = root / "bus" / "pci" / "devices"

    def read(self, address: str, name: str) -> str | None:
        try:
            return (self.devices / address / name).read_text().strip()
        except OSError:
            return None

    def write(self, path: Path, value: str, what: str) -> None:
        try:
            path.write_text(value)
        except OSError as e:
            raise ProvisionError(f"{what}: the kernel refused {path.name} = {value!r}: {e.strerror or e}") from e

    def pfs(self) -> list[str]:
        if not self.devices.is_dir():
            return []
        return sorted(d.name for d in self.devices.iterdir() if (d / "sriov_totalvfs").exists())

    def netdevs(self, address: str) -> list[str]:
        net = self.devices / address / "net"
        return sorted(p.name for p in net.iterdir()) if net.is_dir() else []

    def vfs(self, pf: str) -> list[str]:
        links = sorted((self.devices / pf).glob("virtfn*"), key=lambda p: int(p.name[6:]))
        return [os.readlink(link).rsplit("/", 1)[-1] for link in links]

    def driver(self, address: str) -> str | None:
        link = self.devices / address / "driver"
        return os.readlink(link).rsplit("/", 1)[-1] if link.is_symlink() else None

    def group(self, address: str) -> str | None:
        link = self.devices / address / "iommu_group"
        return os.readlink(link).rsplit("/", 1)[-1] if link.is_symlink() else None

    def held_groups(self) -> set[str]:
        """IOMMU groups some process holds open (``/dev/vfio/N`` among its file descriptors)."""
        held: set[str] = set()
        for proc in self.proc.iterdir() if self.proc.is_dir() else ():
            if not proc.name.isdigit():
                continue
            try:
                fds = list((proc / "fd").iterdir())
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("/dev/vfio/") and target[10:].isdigit():
                    held.add(target[10:])
        return held


def _matches(sysfs: Sysfs, provision: VfProvision, pf: str) -> bool:
    selector = provision.pf
    if selector.address is not None:
        return str(selector.address) == pf
    if selector.netdev is not None:
        return selector.netdev in sysfs.netdevs(pf)
    if selector.vendor_product is not None:
        ids = (sysfs.read(pf, "vendor"), sysfs.read(pf, "device"))
        return ids == tuple(f"0x{x}" for x in selector.vendor_product)
    return False


def provision_vfs(provisions: Sequence[VfProvision], sysfs_root: Path, procfs_root: Path) -> Outcome:
    """One pass over ``provisions``; a PF that fails does not stop the others."""
    if not provisions:
        return Outcome()
    sysfs = Sysfs(sysfs_root, procfs_root)
    pfs = sysfs.pfs()
    actions: list[str] = []
    errors: list[str] = []
    for provision in provisions:
        matched = [pf for pf in pfs if _matches(sysfs, provision, pf)]
        if not matched:
            errors.append(f"sriov pf {provision.pf.text!r}: no SR-IOV PF on this host matches")
            continue
        for pf in matched:
            try:
                actions.extend(_provision(sysfs, provision, pf))
            except ProvisionError as e:
                errors.append(str(e))
    for action in actions:
        log.info("%s", action)
    return Outcome(tuple(actions), tuple(errors))


def _provision(sysfs: Sysfs, provision: VfProvision, pf: str) -> list[str]:
    what = f"PF {pf} ({provision.pf.text})" if provision.pf.text != pf else f"PF {pf}"
    total = int(sysfs.read(pf, "sriov_totalvfs") or 0)
    if provision.num_vfs > total:
        raise ProvisionError(f"{what}: num_vfs ({provision.num_vfs}) is more than its sriov_totalvfs ({total})")
    if provision.driver is VfDriver.VFIO_PCI and not (sysfs.root / "bus" / "pci" / "drivers" / VFIO_PCI).is_dir():
        raise ProvisionError(f"{what}: driver {VFIO_PCI!r} is not loaded (modprobe vfio-pci)")
    actions: list[str] = []
    current = int(sysfs.read(pf, "sriov_numvfs") or 0)
    pf_dir = sysfs.devices / pf
    if current != provision.num_vfs:
        held = sysfs.held_groups()
        busy = [vf for vf in sysfs.vfs(pf) if sysfs.group(vf) in held]
        if busy:
            raise ProvisionError(
                f"{what}: cannot change num_vfs from {current} to {provision.num_vfs} while VFs are in use "
                f"({', '.join(busy)})"
            )
        # New VFs must not be probed by the PF's VF driver first when they are meant for vfio-pci.
        autoprobe = "0" if provision.driver is VfDriver.VFIO_PCI else "1"
        if (pf_dir / "sriov_drivers_autoprobe").exists() and sysfs.read(pf, "sriov_drivers_autoprobe") != autoprobe:
            sysfs.write(pf_dir / "sriov_drivers_autoprobe", autoprobe, what)
        if current > 0:
            sysfs.write(pf_dir / "sriov_numvfs", "0", what)  # the kernel takes a new count only from 0
        if provision.num_vfs > 0:
            sysfs.write(pf_dir / "sriov_numvfs", str(provision.num_vfs), what)
        actions.append(f"{what}: sriov_numvfs {current} -> {provision.num_vfs}")
    actions.extend(_bind(sysfs, provision.driver, pf, what))
    return actions


def _in_use(sysfs: Sysfs, vf: str, held: set[str]) -> bool:
    """Held by a process (its IOMMU group open: QEMU), or its netdev under another (a macvtap's lower)."""
    if sysfs.group(vf) in held:
        return True
    net = sysfs.devices / vf / "net"
    return any(any(p.name.startswith("upper_") for p in (net / n).iterdir()) for n in sysfs.netdevs(vf))


def _bind(sysfs: Sysfs, driver: VfDriver, pf: str, what: str) -> Iterable[str]:
    """``vfio-pci``: bind each VF not in use and not on vfio-pci to it. ``default``: a VF left without a
    driver by an override (vfio-pci asked for before) is probed again without it; a VF on vfio-pci is left
    there (libvirt or the agent put it there for a server, whose teardown gives it back), and so is one
    the kernel's own probe left without a driver."""
    held: set[str] | None = None
    for vf in sysfs.vfs(pf):
        bound = sysfs.driver(vf)
        override = sysfs.read(vf, "driver_override")
        if driver is VfDriver.VFIO_PCI:
            if bound == VFIO_PCI:
                continue
        elif bound is not None or override in (None, "", "(null)"):
            continue
        if held is None:
            held = sysfs.held_groups()
        if _in_use(sysfs, vf, held):
            continue  # its driver changes when it is free again
        vf_dir = sysfs.devices / vf
        where = f"{what} VF {vf}"
        sysfs.write(vf_dir / "driver_override", VFIO_PCI if driver is VfDriver.VFIO_PCI else "\n", where)
        if bound is not None:
            sysfs.write(vf_dir / "driver" / "unbind", vf, where)
        sysfs.write(sysfs.root / "bus" / "pci" / "drivers_probe", vf, where)
        yield f"{what}: VF {vf} bound to {sysfs.driver(vf) or 'no driver'} (was {bound or 'no driver'})"


class ProvisioningScan:
    """``scan`` preceded by a provisioning pass. The pass's errors become the scan's warnings (the agent
    logs each once while it persists) and stay in ``errors`` until a pass has none: host-wide causes,
    which the reconciler puts on the host rather than leaving them in this agent's log."""

    def __init__(
        self, provisions: Sequence[VfProvision], sysfs_root: Path, procfs_root: Path, scan: Callable[[], ScanResult]
    ) -> None:
        self.provisions, self.sysfs_root, self.procfs_root, self.scan = provisions, sysfs_root, procfs_root, scan
        self.errors: tuple[str, ...] = ()

    def __call__(self) -> ScanResult:
        outcome = provision_vfs(self.provisions, self.sysfs_root, self.procfs_root)
        self.errors = outcome.errors
        scanned = self.scan()
        if not outcome.errors:
            return scanned
        return dataclasses.replace(scanned, warnings=(*outcome.errors, *scanned.warnings))


def provisioning(
    provisions: Sequence[VfProvision], sysfs_root: Path, procfs_root: Path, scan: Callable[[], ScanResult]
) -> ProvisioningScan:
    """``scan`` preceded by a provisioning pass (see :class:`ProvisioningScan`)."""
    return ProvisioningScan(provisions, sysfs_root, procfs_root, scan)
