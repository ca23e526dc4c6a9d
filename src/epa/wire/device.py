"""A device on the wire: what ``/v1/devices`` answers, and a device inside an inventory report."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from epa.domain.alias import TAG_KEY_MAX, TAG_VALUE_MAX

DevTypeName = Literal["type-PCI", "type-PF", "type-VF"]
StatusName = Literal["available", "claimed", "allocated", "unavailable", "removed"]
_S = Field(default=None, max_length=256)
# Per-field caps, from real hosts with headroom (docs/api.md): a PF in switchdev mode has a representor netdev
# per VF (256 on the largest NICs); a PF has at most a few hundred VFs (4,096 is the PCIe SR-IOV ceiling of
# what one PF can number with its routing IDs); a PCIe path is a handful of bridges.
MAX_NETDEVS = 512
MAX_VFS = 4096
MAX_PCIE_PATH = 32
MAX_TAGS = 64
Address = Annotated[str, Field(max_length=16)]
TagKey = Annotated[str, Field(min_length=1, max_length=TAG_KEY_MAX)]
TagValue = Annotated[str, Field(max_length=TAG_VALUE_MAX)]


class NetdevBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    name: str = Field(min_length=1, max_length=64)
    mac: str | None = _S
    operstate: str | None = _S
    phys_switch_id: str | None = _S


class PciFunction(BaseModel):
    """One PCI function as discovery reports it (``PciDevice.to_json()``, in its order)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    address: str = Field(max_length=16)
    vendor_id: str = Field(max_length=8)
    product_id: str = Field(max_length=8)
    class_code: str = Field(max_length=10)
    subsystem_vendor_id: str | None = Field(default=None, max_length=8)
    subsystem_product_id: str | None = Field(default=None, max_length=8)
    vendor_name: str | None = _S
    product_name: str | None = _S
    dev_type: DevTypeName = "type-PCI"
    parent_addr: str | None = Field(default=None, max_length=16)
    numa_node: int | None = Field(default=None, ge=0, le=1023)
    iommu_group: int | None = Field(default=None, ge=0)
    driver: str | None = _S
    netdev: str | None = _S
    netdevs: list[NetdevBody] = Field(default_factory=list, max_length=MAX_NETDEVS)
    sriov_totalvfs: int | None = Field(default=None, ge=0, le=65535)
    sriov_numvfs: int | None = Field(default=None, ge=0, le=65535)
    vf_addrs: list[Address] = Field(default_factory=list, max_length=MAX_VFS)
    pci_root: str | None = _S
    pcie_path: list[Address] = Field(default_factory=list, max_length=MAX_PCIE_PATH)


class DeviceBody(PciFunction):
    """A device in an agent's inventory report: the function plus the device_spec verdict."""

    assignable: StrictBool = False
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=MAX_TAGS)


class DeviceOut(PciFunction):
    """A device as ``/v1/devices`` answers it: the function, then the inventory's view of it (the answer's
    order as it always was)."""

    switchdev: bool = False
    host: str
    assignable: bool
    tags: dict[str, str]
    status: StatusName
    owner: str | None
    vanished: bool


class DeviceList(BaseModel):
    devices: list[DeviceOut]
    next_marker: str | None
