"""Value types of EPA's vocabulary. This layer does no I/O and imports no framework."""

from epa.domain.address import PciAddress
from epa.domain.device import DevType, NetInterface, PciDevice

__all__ = ["DevType", "NetInterface", "PciAddress", "PciDevice"]
