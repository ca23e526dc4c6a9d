"""One PCI function as discovery sees it, whichever backend (sysfs, libvirt) read it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from epa.domain.address import PciAddress

# PCI class codes (the top 16 bits of the 24-bit class) that matter to EPA.
CLASS_PCI_BRIDGE = "0604"
CLASS_HOST_BRIDGE = "0600"


class DevType(enum.StrEnum):
    """Nova's ``dev_type``: a plain function, an SR-IOV physical function, or a virtual function."""

    PCI = "type-PCI"
    PF = "type-PF"
    VF = "type-VF"


@dataclass(frozen=True, slots=True)
class NetInterface:
    """A network interface the kernel bound to a PCI function (``/sys/.../net/IFNAME``)."""

    name: str
    mac: str | None = None
    operstate: str | None = None
    # Set on switchdev-mode NICs (and their representors): the e-switch id.
    phys_switch_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mac": self.mac,
            "operstate": self.operstate,
            "phys_switch_id": self.phys_switch_id,
        }


@dataclass(frozen=True, slots=True)
class PciDevice:
    """A PCI function. ``pcie_path`` lists the upstream bridges from the root complex down to the
    function's own parent bridge (empty for a function on a root bus); ``pci_root`` names the root
    complex (``pci0000:3a``)."""

    address: PciAddress
    vendor_id: str
    product_id: str
    class_code: str
    dev_type: DevType = DevType.PCI
    parent_addr: PciAddress | None = None
    subsystem_vendor_id: str | None = None
    subsystem_product_id: str | None = None
    numa_node: int | None = None
    iommu_group: int | None = None
    driver: str | None = None
    netdevs: tuple[NetInterface, ...] = ()
    sriov_totalvfs: int | None = None
    sriov_numvfs: int | None = None
    vf_addrs: tuple[PciAddress, ...] = ()
    pci_root: str | None = None
    pcie_path: tuple[PciAddress, ...] = ()
    vendor_name: str | None = None
    product_name: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.dev_type is DevType.VF and self.vf_addrs:
            raise ValueError(f"{self.address}: a VF cannot have VFs of its own")
        if self.dev_type is not DevType.VF and self.parent_addr is not None:
            raise ValueError(f"{self.address}: only a VF has a parent_addr")

    @property
    def is_bridge(self) -> bool:
        return self.class_code[:4] in (CLASS_PCI_BRIDGE, CLASS_HOST_BRIDGE)

    @property
    def netdev(self) -> str | None:
        """The first network interface's name: what Nova records as ``dev_name``."""
        return self.netdevs[0].name if self.netdevs else None

    @property
    def switchdev(self) -> bool:
        return any(n.phys_switch_id for n in self.netdevs)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "vendor_id": self.vendor_id,
            "product_id": self.product_id,
            "class_code": self.class_code,
            "subsystem_vendor_id": self.subsystem_vendor_id,
            "subsystem_product_id": self.subsystem_product_id,
            "vendor_name": self.vendor_name,
            "product_name": self.product_name,
            "dev_type": self.dev_type.value,
            "parent_addr": str(self.parent_addr) if self.parent_addr else None,
            "numa_node": self.numa_node,
            "iommu_group": self.iommu_group,
            "driver": self.driver,
            "netdev": self.netdev,
            "netdevs": [n.to_json() for n in self.netdevs],
            "sriov_totalvfs": self.sriov_totalvfs,
            "sriov_numvfs": self.sriov_numvfs,
            "vf_addrs": [str(a) for a in self.vf_addrs],
            "pci_root": self.pci_root,
            "pcie_path": [str(a) for a in self.pcie_path],
            "switchdev": self.switchdev,
        }
