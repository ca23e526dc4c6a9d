"""An inventory report on the wire: the body an agent sends and what its reconcile changed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from epa.wire.device import DeviceBody
from epa.wire.host import STORED_INT_MAX, NumaCellBody

# The largest realistic host has about 4,096 PCI functions; twice that is the most one report may carry.
MAX_DEVICES = 8192
MAX_NUMA_CELLS = 64


class InventoryReport(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    generation: int = Field(
        ge=0, le=STORED_INT_MAX, description="The host generation the agent last saw (0 for a new host)."
    )
    numa_cells: list[NumaCellBody] = Field(default_factory=list, max_length=MAX_NUMA_CELLS)
    devices: list[DeviceBody] = Field(default_factory=list, max_length=MAX_DEVICES)


class InventoryOutcome(BaseModel):
    generation: int
    added: list[str]
    updated: list[str]
    removed: list[str]
    vanished_in_use: list[str]
    unchanged: int
