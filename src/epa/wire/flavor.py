"""A flavor on the wire: what ``/v1/flavors`` answers, made from the domain's ``Flavor``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from epa.domain.flavor import PCI_ALIAS_KEY, Flavor
from epa.domain.pci_group import PCI_GROUP_KEY


class PciRequestOut(BaseModel):
    alias: str
    count: int


class FlavorOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    name: str
    vcpus: int
    memory_mb: int
    pci_passthrough_alias: str = Field(alias="pci_passthrough:alias")
    pci_requests: list[PciRequestOut]
    numa_policy: str | None
    numa_nodes: int
    disk_gb: int | None = None
    image: str | None = None
    pci_group: str = ""


class FlavorList(BaseModel):
    flavors: list[FlavorOut]


def flavor_out(f: Flavor) -> FlavorOut:
    # By the wire's names: "pci_passthrough:alias" is no Python name.
    return FlavorOut.model_validate(
        {
            "name": f.name,
            "vcpus": f.vcpus,
            "memory_mb": f.memory_mb,
            PCI_ALIAS_KEY: f.pci_alias,
            "pci_requests": [PciRequestOut(alias=r.alias, count=r.count) for r in f.pci_requests],
            "numa_policy": f.numa_policy.value if f.numa_policy is not None else None,
            "numa_nodes": f.numa_nodes,
            "disk_gb": f.disk_gb,
            "image": f.image,
            PCI_GROUP_KEY: f.pci_group,
        }
    )
