"""The agent's declarative VF provisioning, EPA TOML's ``[[sriov]]`` tables: per PF (``pf`` = a PCI
address, a netdev name or ``vendor:product``), how many VFs (``num_vfs``) and which driver they are bound
to (``driver``: ``default``, the PF's own VF driver, or ``vfio-pci``, ready for passthrough)."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from epa.domain.address import PciAddress
from epa.domain.hexid import is_hex_id
from epa.errors import ConfigError, InvalidInput

_NETDEV = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")  # IFNAMSIZ - 1
_KEYS = ("pf", "num_vfs", "driver")
MAX_VFS = 2048  # the PCIe limit on TotalVFs is 65535; no real PF has more than a few hundred


class VfDriver(enum.StrEnum):
    DEFAULT = "default"
    VFIO_PCI = "vfio-pci"


@dataclass(frozen=True, slots=True)
class PfSelector:
    """Which PFs a ``[[sriov]]`` entry names: exactly one of a PCI address, a netdev or vendor:product."""

    text: str
    address: PciAddress | None = None
    netdev: str | None = None
    vendor_product: tuple[str, str] | None = None

    @classmethod
    def parse(cls, text: str) -> PfSelector:
        vendor, colon, product = text.lower().partition(":")
        if colon and is_hex_id(vendor) and is_hex_id(product):
            return cls(text, vendor_product=(vendor, product))
        try:
            return cls(text, address=PciAddress.parse(text))
        except InvalidInput:
            pass
        if _NETDEV.fullmatch(text):
            return cls(text, netdev=text)
        raise InvalidInput(f"pf ({text!r}) is neither a PCI address, a netdev name nor vendor:product")


@dataclass(frozen=True, slots=True)
class VfProvision:
    """One ``[[sriov]]`` entry, parsed."""

    pf: PfSelector
    num_vfs: int
    driver: VfDriver

    @classmethod
    def parse(cls, entry: object, where: str) -> VfProvision:
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: {entry!r} is not a table")
        unknown = sorted(set(entry) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (want {', '.join(_KEYS)})")
        pf, num_vfs, driver = entry.get("pf"), entry.get("num_vfs"), entry.get("driver", "default")
        if not isinstance(pf, str):
            raise ConfigError(f"{where}: pf ({pf!r}) must be a string: a PCI address, a netdev or vendor:product")
        if not isinstance(num_vfs, int) or isinstance(num_vfs, bool) or not 0 <= num_vfs <= MAX_VFS:
            raise ConfigError(f"{where}: num_vfs ({num_vfs!r}) must be an integer in 0..{MAX_VFS}")
        if driver not in {d.value for d in VfDriver}:
            raise ConfigError(f"{where}: driver ({driver!r}) must be one of {', '.join(d.value for d in VfDriver)}")
        try:
            selector = PfSelector.parse(pf)
        except InvalidInput as e:
            raise ConfigError(f"{where}: {e}") from e
        return cls(selector, num_vfs, VfDriver(driver))


def parse_sriov(value: object, source: str) -> tuple[VfProvision, ...]:
    """The ``[[sriov]]`` array of ``source`` (absent: none)."""
    if value is None:
        return ()
    entries: Sequence[object] = value if isinstance(value, list) else [value]
    return tuple(VfProvision.parse(e, f"{source}: sriov[{i}]") for i, e in enumerate(entries))
