"""The sysfs discovery backend: reads ``ROOT/bus/pci/devices`` the way the kernel lays it out.

The root is a parameter (``/sys`` in production, a built tree in tests). Every file that is
missing, unreadable or garbage gives a warning naming it, and the scan carries on; only a root with
no PCI bus at all is an error."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from epa.discovery.links import check_pf_vf_links
from epa.discovery.pci_ids import PciIds
from epa.discovery.result import ScanResult
from epa.discovery.sysfs_read import AttrReader
from epa.domain.address import PciAddress
from epa.domain.device import DevType, NetInterface, PciDevice
from epa.errors import DiscoveryError, InvalidInput

_VIRTFN = re.compile(r"virtfn(\d+)")
_ROOT_COMPLEX = re.compile(r"pci[0-9a-f]{4}:[0-9a-f]{2}")


def scan_sysfs(root: Path = Path("/sys"), names: PciIds | None = None) -> ScanResult:
    """Scan every PCI function under ``root`` (a ``/sys``-shaped tree)."""
    bus = root / "bus" / "pci" / "devices"
    try:
        entries = sorted(os.listdir(bus))
    except OSError as e:
        raise DiscoveryError(f"cannot list PCI devices in {bus}: {e.strerror or e}") from e
    warnings: list[str] = list(names.warnings) if names is not None else []
    devices: list[PciDevice] = []
    devices_root = os.path.realpath(root / "devices")
    for entry in entries:
        try:
            address = PciAddress.parse(entry)
        except InvalidInput as e:
            warnings.append(f"{bus / entry}: skipped, the name is not a PCI address ({e})")
            continue
        device = _read_function(devices_root, bus / entry, address, names, warnings)
        if device is not None:
            devices.append(device)
    check_pf_vf_links(devices, warnings, "physfn points to", "not present on the PCI bus")
    return ScanResult(source=f"sysfs:{root}", devices=tuple(devices), warnings=tuple(warnings))


def _resolve(link: Path, warnings: list[str]) -> str | None:
    try:
        path = os.path.realpath(link, strict=True)
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop on some Python versions
        warnings.append(f"{link}: skipped, the link does not resolve ({e})")
        return None
    if not os.path.isdir(path):
        warnings.append(f"{link}: skipped, it does not point to a device directory")
        return None
    return path


def _topology(
    devices_root: str, path: str, address: PciAddress, warnings: list[str]
) -> tuple[str | None, tuple[PciAddress, ...]]:
    """The root complex and the bridges above the function, read off its place under devices/."""
    if not path.startswith(devices_root + "/"):
        warnings.append(f"{path}: not under {devices_root}; PCIe path unknown")
        return None, ()
    parts = path[len(devices_root) + 1 :].split("/")
    pci_root = parts[0] if parts and _ROOT_COMPLEX.fullmatch(parts[0]) else None
    bridges: list[PciAddress] = []
    for part in parts[1:-1]:
        try:
            bridges.append(PciAddress.parse(part))
        except InvalidInput:
            continue  # a non-PCI level (e.g. a platform device) in the path
    if parts and parts[-1] != str(address):
        warnings.append(f"{path}: directory name does not match {address}")
    return pci_root, tuple(bridges)


def _netdevs(path: str, warnings: list[str]) -> tuple[NetInterface, ...]:
    """Interfaces under ``net/`` and, for virtio functions, under ``virtioN/net/``."""
    net_dirs = [f"{path}/net"]
    with contextlib.suppress(OSError):
        net_dirs += sorted(f"{path}/{n}/net" for n in os.listdir(path) if n.startswith("virtio"))
    out: list[NetInterface] = []
    for net_dir in net_dirs:
        try:
            names = sorted(os.listdir(net_dir))
        except OSError:
            continue
        for name in names:
            r = AttrReader(f"{net_dir}/{name}", warnings)
            out.append(
                NetInterface(
                    name=name,
                    mac=r.text("address"),
                    operstate=r.text("operstate"),
                    phys_switch_id=r.text("phys_switch_id"),
                )
            )
    return tuple(out)


def _virtfns(r: AttrReader) -> tuple[PciAddress, ...]:
    try:
        links = [(int(m.group(1)), m.group(0)) for n in os.listdir(r.path) if (m := _VIRTFN.fullmatch(n))]
    except OSError as e:
        r.warnings.append(f"{r.path}: cannot list its virtfn links ({e.strerror or e}); its VFs are not known")
        return ()
    out = []
    for _, name in sorted(links):
        addr = r.link_address(name)
        if addr is not None:
            out.append(addr)
    return tuple(out)


def _read_function(
    devices_root: str, link: Path, address: PciAddress, names: PciIds | None, warnings: list[str]
) -> PciDevice | None:
    path = _resolve(link, warnings)
    if path is None:
        return None
    mine: list[str] = []
    r = AttrReader(path, mine)
    vendor = r.hex_id("vendor", 4, required=True)
    product = r.hex_id("device", 4, required=True)
    class_code = r.hex_id("class", 6, required=True)
    if vendor is None or product is None or class_code is None:
        warnings.extend(mine)
        warnings.append(f"{path}: skipped {address}, its vendor, device or class is unreadable")
        return None
    numa = r.integer("numa_node")
    totalvfs = r.integer("sriov_totalvfs")
    numvfs = r.integer("sriov_numvfs") if totalvfs is not None else None
    parent = r.link_address("physfn")
    vfs = _virtfns(r)
    if parent is not None:
        dev_type = DevType.VF
        vfs = ()
    elif totalvfs is not None and totalvfs > 0:
        dev_type = DevType.PF
    else:
        dev_type = DevType.PCI
    pci_root, bridges = _topology(devices_root, path, address, mine)
    device = PciDevice(
        address=address,
        vendor_id=vendor,
        product_id=product,
        class_code=class_code,
        dev_type=dev_type,
        parent_addr=parent,
        subsystem_vendor_id=r.hex_id("subsystem_vendor", 4),
        subsystem_product_id=r.hex_id("subsystem_device", 4),
        numa_node=numa if numa is not None and numa >= 0 else None,
        iommu_group=r.link_integer("iommu_group"),
        driver=r.link_name("driver"),
        netdevs=_netdevs(path, mine),
        sriov_totalvfs=totalvfs,
        sriov_numvfs=numvfs,
        vf_addrs=vfs,
        pci_root=pci_root,
        pcie_path=bridges,
        vendor_name=names.vendor_name(vendor) if names else None,
        product_name=names.product_name(vendor, product) if names else None,
        warnings=tuple(mine),
    )
    warnings.extend(mine)
    return device
