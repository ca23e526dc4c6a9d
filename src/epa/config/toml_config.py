"""EPA's own TOML config: ``[pci] device_spec = [...]`` and ``alias = [...]``; each entry an inline table
or a string holding Nova's JSON."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping

from epa.config.raw import RawConfig, RawEntry
from epa.errors import ConfigError

PCI_KEYS = ("device_spec", "alias")


def decode_toml(text: str, source: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc


def _entries(key: str, value: object, source: str) -> tuple[RawEntry, ...]:
    # One table or one string is accepted as a list of one.
    if isinstance(value, str | Mapping):
        return (RawEntry(value),)
    if isinstance(value, list):
        return tuple(RawEntry(item) for item in value)
    raise ConfigError(f"{source}: [pci] {key} = {value!r} must be an array of tables or of JSON strings")


def read_toml(document: Mapping[str, object], source: str) -> RawConfig:
    pci = document.get("pci", {})
    if not isinstance(pci, Mapping):
        raise ConfigError(f"{source}: [pci] must be a table, not {pci!r}")
    for key in pci:
        if key not in PCI_KEYS:
            raise ConfigError(f"{source}: [pci] has an unknown key {key!r} (want {' or '.join(PCI_KEYS)})")
    return RawConfig(
        format="toml",
        device_spec=_entries("device_spec", pci.get("device_spec", []), source),
        alias=_entries("alias", pci.get("alias", []), source),
        sriov=document.get("sriov"),
    )
