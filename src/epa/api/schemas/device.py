"""Bodies of the device routes and of the devices inside an inventory report."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

DevTypeName = Literal["type-PCI", "type-PF", "type-VF"]
StatusName = Literal["available", "claimed", "allocated", "unavailable", "removed"]
_S = Field(default=None, max_length=256)


class NetdevBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64)
    mac: str | None = _S
    operstate: str | None = _S
    phys_switch_id: str | None = _S


class DeviceBody(BaseModel):
    """One PCI function as discovery reports it (``PciDevice.to_json()``) plus the device_spec verdict."""

    model_config = ConfigDict(extra="ignore")
    address: str = Field(max_length=16)
    vendor_id: str = Field(max_length=8)
    product_id: str = Field(max_length=8)
    class_code: str = Field(max_length=10)
    dev_type: DevTypeName = "type-PCI"
    parent_addr: str | None = Field(default=None, max_length=16)
    subsystem_vendor_id: str | None = Field(default=None, max_length=8)
    subsystem_product_id: str | None = Field(default=None, max_length=8)
    vendor_name: str | None = _S
    product_name: str | None = _S
    numa_node: int | None = Field(default=None, ge=0, le=1023)
    iommu_group: int | None = Field(default=None, ge=0)
    driver: str | None = _S
    netdev: str | None = _S
    netdevs: list[NetdevBody] = Field(default_factory=list, max_length=512)
    sriov_totalvfs: int | None = Field(default=None, ge=0, le=65535)
    sriov_numvfs: int | None = Field(default=None, ge=0, le=65535)
    vf_addrs: list[str] = Field(default_factory=list, max_length=4096)
    pci_root: str | None = _S
    pcie_path: list[str] = Field(default_factory=list, max_length=64)
    assignable: StrictBool = False
    tags: dict[str, str] = Field(default_factory=dict, max_length=64)


class DeviceOut(DeviceBody):
    host: str
    status: StatusName
    owner: str | None
    vanished: bool
    switchdev: bool = False


class DeviceList(BaseModel):
    devices: list[DeviceOut]
    next_marker: str | None
