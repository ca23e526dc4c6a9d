"""PCI aliases in Nova's ``[pci] alias`` syntax, and flavor PCI requests (``"qat:2, t4:1"``).

An alias names a device request. Several entries with one name are alternatives and must agree on
``numa_policy`` and ``device_type`` (as in Nova). Beyond Nova, an alias may carry free-form tags
(``physical_network``, ...) that a device's device_spec tags must match."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from epa.domain.device import DevType
from epa.domain.hexid import is_hex_id
from epa.domain.names import NAME_RULE, is_valid_name, shown
from epa.errors import InvalidInput

# A device's tags and an alias's: a key is a word, a value a network or a rack name (docs/api.md).
TAG_KEY_MAX = 64
TAG_VALUE_MAX = 256


class InvalidAlias(InvalidInput):
    code = "invalid_alias"


class InvalidPciRequest(InvalidInput):
    code = "invalid_pci_request"


class NumaPolicy(enum.StrEnum):
    """Nova's PCI NUMA affinity policies."""

    REQUIRED = "required"
    LEGACY = "legacy"
    PREFERRED = "preferred"
    SOCKET = "socket"


_RESERVED_KEYS = ("name", "vendor_id", "product_id", "device_type", "numa_policy")


@dataclass(frozen=True, slots=True)
class AliasSpec:
    """One alternative of an alias. ``None`` ids match any device."""

    name: str
    vendor_id: str | None = None
    product_id: str | None = None
    # None: any type, as in Nova when an alias names no device_type.
    device_type: DevType | None = None
    numa_policy: NumaPolicy = NumaPolicy.LEGACY
    tags: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, obj: object, where: str = "alias") -> AliasSpec:
        if not isinstance(obj, Mapping):
            raise InvalidAlias(f"{where}: expected a JSON object, got {shown(obj)}")
        name = obj.get("name")
        if not is_valid_name(name):
            raise InvalidAlias(f"{where}: property name ({shown(name)}) must be {NAME_RULE}")
        ids: dict[str, str | None] = {}
        for key in ("vendor_id", "product_id"):
            value = obj.get(key)
            if value is None:
                ids[key] = None
            elif not is_hex_id(value):
                raise InvalidAlias(f"{where}: property {key} ({shown(value)}) must be 4 hex digits")
            else:
                ids[key] = value.lower()
        dev_type = obj.get("device_type")
        # isinstance first: a list or an object is not hashable, and ``in`` a set would raise TypeError.
        if dev_type is not None and (not isinstance(dev_type, str) or dev_type not in {t.value for t in DevType}):
            raise InvalidAlias(
                f"{where}: property device_type ({shown(dev_type)}) must be one of "
                f"{', '.join(t.value for t in DevType)}"
            )
        policy = obj.get("numa_policy", NumaPolicy.LEGACY.value)
        if not isinstance(policy, str) or policy not in {p.value for p in NumaPolicy}:
            raise InvalidAlias(
                f"{where}: property numa_policy ({shown(policy)}) must be one of "
                f"{', '.join(p.value for p in NumaPolicy)}"
            )
        tags = []
        for key, raw in obj.items():
            if key in _RESERVED_KEYS:
                continue
            if not isinstance(key, str) or not key or len(key) > TAG_KEY_MAX:
                raise InvalidAlias(
                    f"{where}: tag name {shown(key)} must be a non-empty string of at most {TAG_KEY_MAX} characters"
                )
            value = ("true" if raw else "false") if isinstance(raw, bool) else raw
            if not isinstance(value, str) or len(value) > TAG_VALUE_MAX:
                raise InvalidAlias(
                    f"{where}: tag {key} ({shown(value)}) must be a string of at most {TAG_VALUE_MAX} characters"
                )
            tags.append((key, value))
        return cls(
            name=name,
            vendor_id=ids["vendor_id"],
            product_id=ids["product_id"],
            device_type=DevType(dev_type) if dev_type is not None else None,
            numa_policy=NumaPolicy(policy),
            tags=tuple(sorted(tags)),
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "numa_policy": self.numa_policy.value}
        if self.device_type is not None:
            out["device_type"] = self.device_type.value
        if self.vendor_id:
            out["vendor_id"] = self.vendor_id
        if self.product_id:
            out["product_id"] = self.product_id
        out.update(dict(self.tags))
        return out


@dataclass(frozen=True, slots=True)
class Alias:
    """A named request with its alternatives, which share one NUMA policy and one device type."""

    name: str
    specs: tuple[AliasSpec, ...]

    @property
    def numa_policy(self) -> NumaPolicy:
        return self.specs[0].numa_policy

    @property
    def device_type(self) -> DevType | None:
        return self.specs[0].device_type


def _type_name(dev_type: DevType | None) -> str:
    return dev_type.value if dev_type is not None else "any"


def parse_aliases(entries: Sequence[object]) -> dict[str, Alias]:
    """Parse alias entries (JSON objects, or lists of them) into aliases by name."""
    grouped: dict[str, list[AliasSpec]] = {}
    for i, entry in enumerate(entries):
        items = entry if isinstance(entry, list) else [entry]
        for j, item in enumerate(items):
            where = f"alias[{i}]" if len(items) == 1 else f"alias[{i}][{j}]"
            spec = AliasSpec.parse(item, where)
            group = grouped.setdefault(spec.name, [])
            if group and group[0].numa_policy != spec.numa_policy:
                raise InvalidAlias(
                    f"{where}: NUMA policy mismatch for alias {shown(spec.name)} "
                    f"({spec.numa_policy.value} vs {group[0].numa_policy.value})"
                )
            if group and group[0].device_type != spec.device_type:
                raise InvalidAlias(
                    f"{where}: device type mismatch for alias {shown(spec.name)} "
                    f"({_type_name(spec.device_type)} vs {_type_name(group[0].device_type)})"
                )
            group.append(spec)
    return {name: Alias(name, tuple(specs)) for name, specs in grouped.items()}


@dataclass(frozen=True, slots=True)
class PciRequest:
    """``count`` devices of the alias ``alias``."""

    alias: str
    count: int


def parse_pci_requests(text: str, known: Mapping[str, object] | None = None) -> tuple[PciRequest, ...]:
    """Parse Nova's ``pci_passthrough:alias`` value: ``"name:count[, name:count]..."``.

    With ``known``, every alias name must be in it. A name may appear once."""
    if not isinstance(text, str):
        raise InvalidPciRequest(f"pci_passthrough:alias ({shown(text)}) must be a string")
    if not text.strip():
        return ()
    out: list[PciRequest] = []
    for item in text.split(","):
        name, colon, count_text = item.strip().partition(":")
        name = name.strip()
        count_text = count_text.strip()
        if not name or not colon:
            raise InvalidPciRequest(f"pci_passthrough:alias item {shown(item.strip())} is not NAME:COUNT")
        if not count_text.isdigit() or int(count_text) < 1:
            raise InvalidPciRequest(
                f"pci_passthrough:alias item {shown(item.strip())}: count {shown(count_text)} "
                "must be a positive integer"
            )
        if known is not None and name not in known:
            raise InvalidPciRequest(
                f"pci_passthrough:alias item {shown(item.strip())}: alias {shown(name)} is not defined"
            )
        if any(r.alias == name for r in out):
            raise InvalidPciRequest(f"pci_passthrough:alias names alias {shown(name)} twice")
        out.append(PciRequest(name, int(count_text)))
    return tuple(out)
