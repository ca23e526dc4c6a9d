"""What a config source yields before the entries are parsed: the raw entries and where they were."""

from __future__ import annotations

from dataclasses import dataclass

from epa.domain.device_spec import Entry

# A JSON string (nova.conf, TOML string) or an already-decoded TOML table / array of tables.
RawValue = Entry


@dataclass(frozen=True, slots=True)
class RawEntry:
    value: RawValue
    line: int | None = None  # 1-based; None where the format does not tell (TOML)


@dataclass(frozen=True, slots=True)
class RawConfig:
    format: str
    device_spec: tuple[RawEntry, ...] = ()
    alias: tuple[RawEntry, ...] = ()
    warnings: tuple[str, ...] = ()
    sriov: object = None  # EPA TOML's [[sriov]] array, parsed by epa.config.sriov
