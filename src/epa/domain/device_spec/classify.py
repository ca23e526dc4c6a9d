"""Apply the device_specs to a host's devices: which may be assigned to guests, and with which tags.

The first spec that matches a device decides (Nova's Whitelist.get_devspec); a device no spec matches
is not assignable.

Bridges: Nova does not set them apart. The libvirt driver reports every node device with a ``pci``
capability (``Host._get_pcidev_info`` has no class filter) and ``PciDevTracker`` keeps whatever the
whitelist matches, so ``{"vendor_id": "8086"}`` makes Intel root ports assignable in Nova too. We keep
that meaning -- a matched bridge is assignable -- so that a config means the same here as there, and
return a warning per matched bridge, because passing a bridge through is almost never what was meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from epa.domain.device import PciDevice
from epa.domain.device_spec.host import HostView, is_physical_function
from epa.domain.device_spec.spec import DeviceSpec


@dataclass(frozen=True, slots=True)
class ClassifiedDevice:
    """A device with the verdict of the specs: ``spec_index`` is the spec that decided (None when no
    spec matched); ``tag_pairs`` are that spec's tags when the device is assignable."""

    device: PciDevice
    assignable: bool = False
    tag_pairs: tuple[tuple[str, str], ...] = ()
    spec_index: int | None = None

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.tag_pairs)


def _first_match(specs: Sequence[DeviceSpec], device: PciDevice, host: HostView) -> DeviceSpec | None:
    for spec in specs:
        if spec.matches(device, host):
            return spec
    return None


def classify(
    specs: Sequence[DeviceSpec], devices: Sequence[PciDevice]
) -> tuple[tuple[ClassifiedDevice, ...], tuple[str, ...]]:
    """Classify ``devices`` (result in the same order) and say what in the specs looks wrong."""
    host = HostView.of(devices)
    warnings: list[str] = [
        f"{spec.label}: devname '{spec.devname}' is not an interface of any PCI device on this host; "
        "the spec matches nothing"
        for spec in specs
        if spec.devname is not None and spec.devname not in host.by_netdev
    ]
    result: list[ClassifiedDevice] = []
    for device in devices:
        spec = _first_match(specs, device, host)
        if spec is None:
            result.append(ClassifiedDevice(device))
        elif spec.remote_managed and is_physical_function(device):
            # remote_managed means "VFs whose representors a SmartNIC/DPU manages"; a PF cannot be
            # remote-managed. Nova refuses to start with such a spec; we refuse only the PF.
            warnings.append(
                f"{spec.label}: remote_managed=true applies only to VFs, but the spec matches PF "
                f"{device.address}; that PF is not assignable"
            )
            result.append(ClassifiedDevice(device, spec_index=spec.index))
        else:
            if device.is_bridge:
                warnings.append(
                    f"{spec.label}: matches PCI bridge {device.address} (class {device.class_code}), "
                    "which becomes assignable as in Nova; narrow the spec unless that is meant"
                )
            result.append(ClassifiedDevice(device, True, spec.tag_pairs, spec.index))
    return tuple(result), tuple(warnings)
