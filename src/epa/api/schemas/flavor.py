"""Bodies of the flavor routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
