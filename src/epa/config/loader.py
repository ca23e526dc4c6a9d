"""Load a config file (EPA TOML or an existing nova.conf) into parsed device_specs and raw aliases."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from epa.config.nova_conf import read_nova_conf
from epa.config.raw import RawConfig, RawEntry
from epa.config.sriov import VfProvision, parse_sriov
from epa.config.toml_config import decode_toml, read_toml
from epa.domain.device_spec import DeviceSpec, decode_json, parse_device_spec_entry
from epa.errors import ConfigError, DeviceSpecError


@dataclass(frozen=True, slots=True)
class EpaConfig:
    """A loaded config. ``aliases`` are the raw alias objects (lists flattened, in order), checked only
    for being JSON objects; ``format`` is ``"toml"`` or ``"nova.conf"``."""

    source: Path
    format: str
    device_specs: tuple[DeviceSpec, ...] = ()
    aliases: tuple[Mapping[str, object], ...] = ()
    warnings: tuple[str, ...] = ()
    sriov: tuple[VfProvision, ...] = ()


def _where(source: str, entry: RawEntry) -> str:
    return f"{source}:{entry.line}" if entry.line is not None else source


def _device_specs(entries: Sequence[RawEntry], source: str) -> tuple[DeviceSpec, ...]:
    specs: list[DeviceSpec] = []
    for position, entry in enumerate(entries):
        try:
            specs.extend(parse_device_spec_entry(entry.value, position, len(specs)))
        except DeviceSpecError as exc:
            raise ConfigError(f"{_where(source, entry)}: {exc.message}") from exc
    return tuple(specs)


def _aliases(entries: Sequence[RawEntry], source: str) -> tuple[Mapping[str, object], ...]:
    aliases: list[Mapping[str, object]] = []
    for position, entry in enumerate(entries):
        where = f"{_where(source, entry)}: alias[{position}]"
        value: object = entry.value
        if isinstance(value, str):
            try:
                value = decode_json(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: entry '{entry.value}' is not valid JSON: {exc}") from exc
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, Mapping):
                raise ConfigError(f"{where}: entry {entry.value!r} is neither a JSON object nor a list of objects")
            aliases.append(MappingProxyType(dict(item)))
    return tuple(aliases)


def _looks_like_epa_toml(text: str) -> dict[str, object] | None:
    """The decoded document when ``text`` is TOML whose [pci] holds arrays or tables.

    A nova.conf is never that: its values are JSON, whose ``"key": value`` pairs TOML refuses, so the
    two formats cannot be confused except for values that mean the same in both.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    pci = document.get("pci")
    if isinstance(pci, Mapping) and any(isinstance(v, list | Mapping) for v in pci.values()):
        return document
    return None


def _read_raw(path: Path, text: str) -> RawConfig:
    source = str(path)
    if path.suffix.lower() == ".toml":
        return read_toml(decode_toml(text, source), source)
    document = _looks_like_epa_toml(text)
    if document is not None:
        return read_toml(document, source)
    return read_nova_conf(text, source)


def load_config(path: Path) -> EpaConfig:
    """Read ``path``: ``*.toml`` is EPA TOML; anything else is a nova.conf unless its content is EPA
    TOML. Raises ConfigError naming the file, the line where known, and the value at fault."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text: {exc}") from exc
    raw = _read_raw(path, text)
    return EpaConfig(
        sriov=parse_sriov(raw.sriov, str(path)),
        source=path,
        format=raw.format,
        device_specs=_device_specs(raw.device_spec, str(path)),
        aliases=_aliases(raw.alias, str(path)),
        warnings=raw.warnings,
    )


def parse_device_spec_args(args: Sequence[str], first_index: int = 0) -> tuple[DeviceSpec, ...]:
    """The CLI's ``--device-spec JSON|@FILE`` values, in order; an ``@FILE`` holds one JSON entry (an
    object or a list of objects). Spec errors are DeviceSpecError labelled ``--device-spec[N]``; an
    unreadable file is a ConfigError. ``first_index`` numbers the specs on after those of a config
    file, so that every spec_index in a classification is unique."""
    specs: list[DeviceSpec] = []
    for position, arg in enumerate(args):
        text, origin = arg, ""
        if arg.startswith("@"):
            path = Path(arg[1:])
            try:
                text = path.read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise ConfigError(f"--device-spec {arg}: cannot read {path}: {exc.strerror or exc}") from exc
            except UnicodeDecodeError as exc:
                raise ConfigError(f"--device-spec {arg}: {path} is not UTF-8 text: {exc}") from exc
            origin = f" (in {path})"
        try:
            specs.extend(parse_device_spec_entry(text, position, first_index + len(specs), "--device-spec"))
        except DeviceSpecError as exc:
            raise DeviceSpecError(f"{exc.message}{origin}") from exc
    return tuple(specs)
