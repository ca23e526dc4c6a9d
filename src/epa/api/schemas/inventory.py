"""The body of an agent's inventory report and of the server's answer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from epa.api.schemas.device import DeviceBody
from epa.api.schemas.host import STORED_INT_MAX, NumaCellBody


class InventoryReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generation: int = Field(
        ge=0, le=STORED_INT_MAX, description="The host generation the agent last saw (0 for a new host)."
    )
    numa_cells: list[NumaCellBody] = Field(default_factory=list, max_length=1024)
    devices: list[DeviceBody] = Field(default_factory=list, max_length=20000)


class InventoryOutcome(BaseModel):
    generation: int
    added: list[str]
    updated: list[str]
    removed: list[str]
    vanished_in_use: list[str]
    unchanged: int
