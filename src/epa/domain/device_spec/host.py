"""The host's devices as device_spec matching needs to see them: by address and by interface name.

Nova resolves ``devname`` and "is this single address a PF?" by reading sysfs at match time; we answer
the same questions from the discovered device list, which keeps matching pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from epa.domain.address import PciAddress
from epa.domain.device import DevType, PciDevice


def is_physical_function(device: PciDevice) -> bool:
    """Nova's test (``sriov_totalvfs`` > 0), or a device discovery already typed as a PF."""
    return device.dev_type is DevType.PF or (device.sriov_totalvfs or 0) > 0


@dataclass(frozen=True, slots=True)
class HostView:
    by_address: Mapping[PciAddress, PciDevice] = field(default_factory=lambda: MappingProxyType({}))
    by_netdev: Mapping[str, PciDevice] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, devices: Iterable[PciDevice]) -> HostView:
        by_address: dict[PciAddress, PciDevice] = {}
        by_netdev: dict[str, PciDevice] = {}
        for device in devices:
            by_address[device.address] = device
            for netdev in device.netdevs:
                by_netdev.setdefault(netdev.name, device)
        return cls(MappingProxyType(by_address), MappingProxyType(by_netdev))

    def pf_at(self, address: PciAddress) -> PciDevice | None:
        device = self.by_address.get(address)
        return device if device is not None and is_physical_function(device) else None
