"""One PCI function as discovery sees it, whichever backend (sysfs, libvirt) read it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from epa.domain.address import PciAddress
from epa.domain.hexid import parse_hex_id
from epa.errors import InvalidInput, InvalidPciAddress

# PCI class codes (the top 16 bits of the 24-bit class) that matter to EPA.
CLASS_PCI_BRIDGE = "0604"
CLASS_HOST_BRIDGE = "0600"


# A device's tags as the scheduler compares them: (key, value) pairs sorted by key, hashable.
TagPairs = tuple[tuple[str, str], ...]


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
            raise InvalidInput(f"device {self.address}: a VF cannot have VFs of its own")
        if self.dev_type is not DevType.VF and self.parent_addr is not None:
            raise InvalidInput(f"device {self.address}: only a VF has a parent_addr")

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

    @classmethod
    def from_json(cls, obj: object, where: str = "device") -> PciDevice:
        """The inverse of ``to_json``; every bad field is an ``InvalidInput`` naming it and its value."""
        if not isinstance(obj, dict):
            raise InvalidInput(f"{where}: expected a JSON object, got {type(obj).__name__}")
        r = _JsonReader(obj, where)
        address = r.address("address", required=True)
        if address is None:  # pragma: no cover - address(required=True) raises first
            raise r.fail("address", "is required")
        return cls(
            address=address,
            vendor_id=r.hex("vendor_id", 4, required=True) or "",
            product_id=r.hex("product_id", 4, required=True) or "",
            class_code=r.hex("class_code", 6, required=True) or "",
            dev_type=r.dev_type(),
            parent_addr=r.address("parent_addr"),
            subsystem_vendor_id=r.hex("subsystem_vendor_id", 4),
            subsystem_product_id=r.hex("subsystem_product_id", 4),
            numa_node=r.integer("numa_node"),
            iommu_group=r.integer("iommu_group"),
            driver=r.string("driver"),
            netdevs=r.netdevs(),
            sriov_totalvfs=r.integer("sriov_totalvfs"),
            sriov_numvfs=r.integer("sriov_numvfs"),
            vf_addrs=r.addresses("vf_addrs"),
            pci_root=r.string("pci_root"),
            pcie_path=r.addresses("pcie_path"),
            vendor_name=r.string("vendor_name"),
            product_name=r.string("product_name"),
        )


class _JsonReader:
    """Typed access to one device's JSON object, raising errors that name the field and value."""

    def __init__(self, obj: dict[str, Any], where: str) -> None:
        self.obj = obj
        self.where = where

    def fail(self, key: str, problem: str) -> InvalidInput:
        return InvalidInput(f"{self.where}: {key} ({self.obj.get(key)!r}) {problem}")

    def string(self, key: str) -> str | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > 256:
            raise self.fail(key, "must be a string of at most 256 characters")
        return value

    def integer(self, key: str) -> int | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
            raise self.fail(key, "must be a non-negative integer or null")
        return value

    def hex(self, key: str, digits: int, required: bool = False) -> str | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"must be {digits} hex digits")
        try:
            return parse_hex_id(value, f"{self.where}: {key}", digits)
        except InvalidInput as e:
            raise self.fail(key, f"must be {digits} hex digits") from e

    def address(self, key: str, required: bool = False) -> PciAddress | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return None
        if not isinstance(value, str):
            raise self.fail(key, "must be a PCI address string")
        try:
            return PciAddress.parse(value)
        except InvalidInput as e:
            raise InvalidPciAddress(f"{self.where}: {key}: {e}") from e

    def addresses(self, key: str) -> tuple[PciAddress, ...]:
        value = self.obj.get(key) or []
        if not isinstance(value, list):
            raise self.fail(key, "must be a list of PCI addresses")
        out = []
        for item in value:
            if not isinstance(item, str):
                raise self.fail(key, "must be a list of PCI addresses")
            try:
                out.append(PciAddress.parse(item))
            except InvalidInput as e:
                raise InvalidPciAddress(f"{self.where}: {key}: {e}") from e
        return tuple(out)

    def dev_type(self) -> DevType:
        value = self.obj.get("dev_type", DevType.PCI.value)
        try:
            return DevType(value)
        except ValueError as e:
            raise self.fail("dev_type", f"must be one of {', '.join(t.value for t in DevType)}") from e

    def netdevs(self) -> tuple[NetInterface, ...]:
        value = self.obj.get("netdevs")
        if value is None:
            name = self.string("netdev")
            return (NetInterface(name),) if name else ()
        if not isinstance(value, list):
            raise self.fail("netdevs", "must be a list of objects")
        out = []
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise self.fail("netdevs", "must be a list of objects with a name")
            fields = {k: item.get(k) for k in ("mac", "operstate", "phys_switch_id")}
            if any(v is not None and not isinstance(v, str) for v in fields.values()):
                raise self.fail("netdevs", "must hold strings")
            out.append(NetInterface(item["name"], fields["mac"], fields["operstate"], fields["phys_switch_id"]))
        return tuple(out)
