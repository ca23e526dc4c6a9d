"""Bodies of the alias routes (Nova's ``[pci] alias`` entries)."""

from __future__ import annotations

from pydantic import BaseModel


class AliasOut(BaseModel):
    name: str
    numa_policy: str
    device_type: str | None
    specs: list[dict[str, str]]


class AliasList(BaseModel):
    aliases: list[AliasOut]
