"""Vendor and device names from the pci.ids database (Debian's ``pci.ids`` package)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATHS = (Path("/usr/share/misc/pci.ids"), Path("/usr/share/hwdata/pci.ids"))


@dataclass(slots=True)
class PciIds:
    """Lookup tables: vendor id -> name, (vendor, device) -> name. Ids are 4-digit lower-case hex.
    ``warnings``: a pci.ids that is there but could not be read (a scan repeats them in its own)."""

    vendors: dict[str, str] = field(default_factory=dict)
    devices: dict[tuple[str, str], str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

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
    """Load the first pci.ids found (or ``path``); an empty table when there is none (a minimal install
    has none: names are a nicety), with a warning for each one there that could not be read."""
    warnings: list[str] = []
    for candidate in (path,) if path else DEFAULT_PATHS:
        try:
            with candidate.open(encoding="utf-8", errors="replace") as fh:
                ids = PciIds.parse(line.rstrip("\n") for line in fh)
        except FileNotFoundError:
            continue
        except OSError as e:
            warnings.append(f"{candidate}: cannot read the PCI names ({e.strerror or e}); devices go unnamed")
            continue
        ids.warnings.extend(warnings)
        return ids
    return PciIds(warnings=warnings)
