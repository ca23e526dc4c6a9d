"""The ``address`` of a device_spec: Nova's glob string or its object of regular expressions.

Glob: ``[[[[domain]:]bus]:][slot][.[func]]`` with whole-field ``*`` wildcards and missing fields meaning
any (so ``0a:00.1`` is *any* domain, bus 0a, slot 00, function 1 -- Nova's meaning, not domain 0000).
Regex: ``{"domain": ..., "bus": ..., "slot": ..., "function": ...}``, each matched with ``re.match`` (from
the start, not anchored at the end) against the lower-case zero-padded field (``0000``, ``3b``, ``02``,
``1``); a missing key means ``.*``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from epa.domain.address import MAX_BUS, MAX_DOMAIN, MAX_FUNCTION, MAX_SLOT, PciAddress
from epa.domain.device_spec._hex import ANY, parse_hex_property
from epa.errors import DeviceSpecError

REGEX_KEYS = ("domain", "bus", "slot", "function")
REGEX_ANY = ".*"

# The canonical text of each field: what sysfs names a device by, and what Nova's PF lookup for a
# "single address" regex spec can therefore find (see RegexAddressSpec.single_address).
_CANONICAL_FIELD = (
    re.compile(r"[0-9a-f]{4}"),
    re.compile(r"[0-9a-f]{2}"),
    re.compile(r"[0-9a-f]{2}"),
    re.compile(r"[0-9a-f]"),
)


def _fmt(value: int | None, width: int) -> str:
    return ANY if value is None else f"{value:0{width}x}"


@dataclass(frozen=True, slots=True)
class GlobAddressSpec:
    """A glob address; each field is a number or None for "any"."""

    domain: int | None = None
    bus: int | None = None
    slot: int | None = None
    function: int | None = None

    @classmethod
    def parse(cls, text: str) -> GlobAddressSpec:
        # Fields are checked in Nova's order (function first), so a spec with two bad fields gets the
        # same complaint it would get from Nova.
        dbs, _dot, func_text = text.partition(".")
        func_text = func_text.strip()
        # Nova refuses "0a:00. " (a blank function) although it accepts a blank slot; we ignore all
        # whitespace the same way, so a blank function is "any" too.
        function = parse_hex_property("func", func_text, MAX_FUNCTION) if func_text else None
        fields = dbs.split(":")
        if len(fields) > 3:
            raise DeviceSpecError(
                f"property address ('{text}') has an incorrect format: more than 3 ':'-separated "
                "fields (want [[[[domain]:]bus]:][slot][.[func]])"
            )
        padded = [ANY] * (3 - len(fields)) + [f.strip() or ANY for f in fields]
        domain = parse_hex_property("domain", padded[0], MAX_DOMAIN)
        bus = parse_hex_property("bus", padded[1], MAX_BUS)
        slot = parse_hex_property("slot", padded[2], MAX_SLOT)
        return cls(domain, bus, slot, function)

    @property
    def single_address(self) -> PciAddress | None:
        """The one address this spec names, when every field is concrete (Nova's is_single_address)."""
        if self.domain is None or self.bus is None or self.slot is None or self.function is None:
            return None
        return PciAddress(self.domain, self.bus, self.slot, self.function)

    def match(self, address: PciAddress) -> bool:
        return (
            self.domain in (None, address.domain)
            and self.bus in (None, address.bus)
            and self.slot in (None, address.slot)
            and self.function in (None, address.function)
        )

    def __str__(self) -> str:
        return f"{_fmt(self.domain, 4)}:{_fmt(self.bus, 2)}:{_fmt(self.slot, 2)}.{_fmt(self.function, 1)}"


@dataclass(frozen=True, slots=True)
class RegexAddressSpec:
    """An address given as one regular expression per field."""

    domain: re.Pattern[str]
    bus: re.Pattern[str]
    slot: re.Pattern[str]
    function: re.Pattern[str]

    @classmethod
    def parse(cls, obj: Mapping[str, object]) -> RegexAddressSpec:
        # Nova ignores unknown keys here; we refuse them, because {"func": "1"} would otherwise
        # silently match every function.
        for key in obj:
            if key not in REGEX_KEYS:
                raise DeviceSpecError(f"property address has an unknown key {key!r} (want {', '.join(REGEX_KEYS)})")
        patterns: list[re.Pattern[str]] = []
        for key in REGEX_KEYS:
            raw = obj.get(key, REGEX_ANY)
            if not isinstance(raw, str):
                raise DeviceSpecError(
                    f"property address.{key} ({json.dumps(raw)}) must be a string holding a regular expression"
                )
            try:
                patterns.append(re.compile(raw))
            except re.error as exc:
                raise DeviceSpecError(
                    f"property address.{key} ('{raw}') is not a valid regular expression: {exc}"
                ) from exc
        return cls(*patterns)

    @property
    def single_address(self) -> PciAddress | None:
        """The one address named when each pattern is a plain canonical hex field.

        Nova calls a regex spec a single address when every pattern is made of hex digits only, then
        looks the address up in sysfs to see whether it is a PF; that lookup only finds canonical
        (lower-case, zero-padded) names, so only those can name a PF whose VFs the spec then covers.
        """
        texts = (self.domain.pattern, self.bus.pattern, self.slot.pattern, self.function.pattern)
        if not all(c.fullmatch(t) for c, t in zip(_CANONICAL_FIELD, texts, strict=True)):
            return None
        values = [int(t, 16) for t in texts]
        if values[2] > MAX_SLOT or values[3] > MAX_FUNCTION:
            return None
        return PciAddress(*values)

    def match(self, address: PciAddress) -> bool:
        domain, bus, slot, function = address.fields
        return bool(
            self.domain.match(domain)
            and self.bus.match(bus)
            and self.slot.match(slot)
            and self.function.match(function)
        )

    def __str__(self) -> str:
        return json.dumps(
            {
                "domain": self.domain.pattern,
                "bus": self.bus.pattern,
                "slot": self.slot.pattern,
                "function": self.function.pattern,
            }
        )


AddressSpec = GlobAddressSpec | RegexAddressSpec


def parse_address_spec(raw: object) -> AddressSpec | None:
    """Parse the ``address`` property; None (or Nova's falsy ``""`` / ``{}``) means any address."""
    if raw is None or raw in ("", {}):
        return None
    if isinstance(raw, str):
        return GlobAddressSpec.parse(raw)
    if isinstance(raw, Mapping):
        return RegexAddressSpec.parse(raw)
    raise DeviceSpecError(
        f"property address ({json.dumps(raw, default=str)}) must be a string "
        '("[[[[domain]:]bus]:][slot][.[func]]") or an object of regular expressions'
    )
