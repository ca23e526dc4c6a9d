"""The PCI address value type: parsed once at the edge, never passed around as a raw string."""

from __future__ import annotations

import re
from dataclasses import dataclass

from epa.errors import InvalidPciAddress

MAX_DOMAIN = 0xFFFF
MAX_BUS = 0xFF
MAX_SLOT = 0x1F
MAX_FUNCTION = 0x7

_HEX = re.compile(r"[0-9a-fA-F]+")


def _field(text: str, name: str, width: int, maximum: int, whole: str) -> int:
    if len(text) != width or not _HEX.fullmatch(text):
        raise InvalidPciAddress(
            f"PCI address {whole!r}: {name} {text!r} must be {width} hex digit{'s' if width > 1 else ''}"
        )
    value = int(text, 16)
    if value > maximum:
        raise InvalidPciAddress(f"PCI address {whole!r}: {name} {text!r} is greater than the maximum ({maximum:x})")
    return value


@dataclass(frozen=True, slots=True, order=True)
class PciAddress:
    """``DDDD:BB:SS.F``: a PCI function's domain, bus, slot (device) and function numbers."""

    domain: int
    bus: int
    slot: int
    function: int

    def __post_init__(self) -> None:
        for name, value, maximum in (
            ("domain", self.domain, MAX_DOMAIN),
            ("bus", self.bus, MAX_BUS),
            ("slot", self.slot, MAX_SLOT),
            ("function", self.function, MAX_FUNCTION),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
                raise InvalidPciAddress(f"PCI address {name} {value!r} is not in 0..{maximum:#x}")

    @classmethod
    def parse(cls, text: str) -> PciAddress:
        """Parse ``DDDD:BB:SS.F`` or ``BB:SS.F`` (domain 0000); any case, no surrounding junk."""
        if not isinstance(text, str):
            raise InvalidPciAddress(f"PCI address {text!r} is not a string")
        whole = text
        dbs, dot, func = text.partition(".")
        if not dot:
            raise InvalidPciAddress(f"PCI address {whole!r}: missing '.function' (want DDDD:BB:SS.F)")
        parts = dbs.split(":")
        if len(parts) == 2:
            parts.insert(0, "0000")
        elif len(parts) != 3:
            raise InvalidPciAddress(f"PCI address {whole!r}: want DDDD:BB:SS.F or BB:SS.F")
        return cls(
            _field(parts[0], "domain", 4, MAX_DOMAIN, whole),
            _field(parts[1], "bus", 2, MAX_BUS, whole),
            _field(parts[2], "slot", 2, MAX_SLOT, whole),
            _field(func, "function", 1, MAX_FUNCTION, whole),
        )

    @classmethod
    def from_libvirt_name(cls, name: str) -> PciAddress:
        """Parse a libvirt node-device name such as ``pci_0000_3b_02_1``."""
        parts = name.split("_")
        if len(parts) != 5 or parts[0] != "pci":
            raise InvalidPciAddress(f"libvirt node device name {name!r} is not pci_DDDD_BB_SS_F")
        return cls.parse(f"{parts[1]}:{parts[2]}:{parts[3]}.{parts[4]}")

    @property
    def libvirt_name(self) -> str:
        return f"pci_{self.domain:04x}_{self.bus:02x}_{self.slot:02x}_{self.function:x}"

    @property
    def fields(self) -> tuple[str, str, str, str]:
        """The four fields as lower-case zero-padded hex, the form Nova's device_spec matches on."""
        return (f"{self.domain:04x}", f"{self.bus:02x}", f"{self.slot:02x}", f"{self.function:x}")

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function:x}"

    def __repr__(self) -> str:
        return f"PciAddress('{self}')"
