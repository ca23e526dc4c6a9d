"""What a discovery scan returns, whichever backend made it."""

from __future__ import annotations

from dataclasses import dataclass

from epa.domain.address import PciAddress
from epa.domain.device import PciDevice


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The functions found (sorted by address) and one warning per thing that could not be read.

    ``source`` says where they came from (``sysfs:/sys``, ``libvirt:test:///...``)."""

    source: str
    devices: tuple[PciDevice, ...]
    warnings: tuple[str, ...] = ()

    def by_address(self) -> dict[PciAddress, PciDevice]:
        return {d.address: d for d in self.devices}
