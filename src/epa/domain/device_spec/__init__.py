"""Nova-compatible ``[pci] device_spec``: parse the operator's entries and classify a host's devices.

An entry means exactly what it means in Nova (nova/pci/devspec.py, whitelist.py); where we are
stricter or differ, the module concerned says so and why.
"""

from epa.domain.device_spec.address_spec import AddressSpec, GlobAddressSpec, RegexAddressSpec
from epa.domain.device_spec.classify import ClassifiedDevice, classify
from epa.domain.device_spec.host import HostView
from epa.domain.device_spec.spec import (
    DeviceSpec,
    Entry,
    decode_json,
    parse_device_spec_entry,
    parse_device_specs,
)

__all__ = [
    "AddressSpec",
    "ClassifiedDevice",
    "DeviceSpec",
    "Entry",
    "GlobAddressSpec",
    "HostView",
    "RegexAddressSpec",
    "classify",
    "decode_json",
    "parse_device_spec_entry",
    "parse_device_specs",
]
