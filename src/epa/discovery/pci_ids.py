"""Vendor and device names from the pci.ids database (Debian's ``pci.ids`` package)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATHS = (Path("/usr/share/misc/pci.ids"), Path("/usr/share/hwdata/pci.ids"))


@dataclass(slots=True)
class PciIds:
    """Lookup tables: vendor id -> name, (vendor, device) -> name. Ids are 4-digit lower-case hex."""

    vendors: dict[str, str] = field(default_factory=dict)
    devices: dict[tuple[str, str], str] = field(default_factory=dict)

    def vendor_name(self, vendor_id: str) -> str | None:
        return self.vendors.get(vendor_id)

    def product_name(self, vendor_id: str, product_id: str) -> str | None:
        return self.devices.get((vendor_id, product_id))

    @classmethod
    def parse(cls, lines: Iterable[str]) -> PciIds:
        """Parse the pci.ids format: ``vvvv  name``, then ``\\tdddd  name`` lines under it; the
        subsystem lines (two tabs) and the device-class section (``C xx``) are skipped."""
        ids = cls()
        vendor: str | None = None
        for line in lines:
            if not line or line.startswith("#") or line.startswith("\t\t"):
                continue
            if line.startswith("C "):
                break  # the class section ends the vendor list
            if line.startswith("\t"):
                if vendor is not None:
                    dev, _, name = line[1:].partition("  ")
                    if len(dev) == 4:
                        ids.devices[(vendor, dev.lower())] = name.strip()
                continue
            vid, _, name = line.partition("  ")
            if len(vid) == 4:
                vendor = vid.lower()
                ids.vendors[vendor] = name.strip()
            else:
                vendor = None
        return ids


def load_pci_ids(path: Path | None = None) -> PciIds:
    """Load the first pci.ids found (or ``path``); an empty table when there is none."""
    for candidate in (path,) if path else DEFAULT_PATHS:
        try:
            with candidate.open(encoding="utf-8", errors="replace") as fh:
                return PciIds.parse(line.rstrip("\n") for line in fh)
        except OSError:
            continue
    return PciIds()
