"""The ``[pci]`` section of a nova.conf, read as oslo.config reads it, including deprecated names."""

from __future__ import annotations

from epa.config.oslo_ini import IniData, IniValue, parse_ini
from epa.config.raw import RawConfig, RawEntry

# Nova's [pci] device_spec and alias options with their deprecated names, newest first:
# (section, key). oslo.config uses a deprecated name only when the current one is not set.
DEVICE_SPEC_NAMES = (
    ("pci", "device_spec"),
    ("pci", "passthrough_whitelist"),
    ("DEFAULT", "pci_passthrough_whitelist"),
)
ALIAS_NAMES = (("pci", "alias"), ("DEFAULT", "pci_alias"))


def _lines(values: list[IniValue]) -> str:
    return ", ".join(str(v.line) for v in values)


def _pick(data: IniData, names: tuple[tuple[str, str], ...], source: str) -> tuple[list[IniValue], list[str]]:
    """The values of the first name that is set, and a warning for each deprecated or ignored name."""
    chosen: list[IniValue] = []
    chosen_name = ""
    warnings: list[str] = []
    current = f"[{names[0][0]}] {names[0][1]}"
    for section, key in names:
        values = data.get(section, {}).get(key, [])
        if not values:
            continue
        name = f"[{section}] {key}"
        if not chosen:
            chosen, chosen_name = values, name
            if name != current:
                warnings.append(
                    f"{source}: {name} (line {_lines(values)}) is a deprecated name; rename it to {current}"
                )
        else:
            warnings.append(f"{source}: {name} (line {_lines(values)}) is ignored because {chosen_name} is set")
    return chosen, warnings


def read_nova_conf(text: str, source: str) -> RawConfig:
    data = parse_ini(text, source)
    specs, spec_warnings = _pick(data, DEVICE_SPEC_NAMES, source)
    aliases, alias_warnings = _pick(data, ALIAS_NAMES, source)
    return RawConfig(
        format="nova.conf",
        device_spec=tuple(RawEntry(v.value, v.line) for v in specs),
        alias=tuple(RawEntry(v.value, v.line) for v in aliases),
        warnings=tuple(spec_warnings + alias_warnings),
    )
