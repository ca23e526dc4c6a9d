"""An alias on the wire (Nova's ``[pci] alias`` entries): what ``/v1/aliases`` answers, made from the
domain's ``Alias``."""

from __future__ import annotations

from pydantic import BaseModel

from epa.domain.alias import Alias


class AliasOut(BaseModel):
    name: str
    numa_policy: str
    device_type: str | None
    specs: list[dict[str, str]]


class AliasList(BaseModel):
    aliases: list[AliasOut]


def alias_out(alias: Alias) -> AliasOut:
    """Each alternative as Nova's entry writes it: a key the alternative leaves open is absent."""
    return AliasOut(
        name=alias.name,
        numa_policy=alias.numa_policy.value,
        device_type=alias.device_type.value if alias.device_type else None,
        specs=[{k: str(v) for k, v in s.to_json().items()} for s in alias.specs],
    )
