"""One device_spec entry, parsed once: what it selects (ids, address or devname) and the tags it gives."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from epa.domain.address import PciAddress
from epa.domain.device import PciDevice
from epa.domain.device_spec._hex import parse_hex_property
from epa.domain.device_spec.address_spec import AddressSpec, parse_address_spec
from epa.domain.device_spec.host import HostView
from epa.domain.device_spec.tags import parse_tags
from epa.errors import DeviceSpecError

MAX_VENDOR_ID = 0xFFFF
MAX_PRODUCT_ID = 0xFFFF

# One config entry: a JSON string, or what TOML / JSON decoding already made of it (checked when parsed).
Entry = str | Mapping[str, object] | Sequence[object]


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(text: str) -> object:
    """``json.loads`` without Python's NaN / Infinity extensions, which Nova's parser has too but
    which make no sense in a device_spec."""
    return json.loads(text, parse_constant=_reject_constant)


def _hex_id(prop: str, raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        # Nova crashes on a JSON number here; "8086" vs 8086 (decimal) is ambiguous, so we refuse it.
        raise DeviceSpecError(f"property {prop} ({json.dumps(raw, default=str)}) must be a string")
    value = parse_hex_property(prop, raw.strip(), MAX_VENDOR_ID)
    return None if value is None else f"{value:04x}"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A parsed device_spec. ``index`` is its position among all specs (lists flattened) and identifies
    it in a classification; ``label`` names it in messages (``device_spec[2]``, ``device_spec[1][0]``).
    Precedence is the order of the sequence handed to classify(), which parsing keeps."""

    index: int
    label: str
    vendor_id: str | None = None
    product_id: str | None = None
    address: AddressSpec | None = None
    devname: str | None = None
    tag_pairs: tuple[tuple[str, str], ...] = ()
    source: str = "{}"

    @classmethod
    def parse(cls, obj: object, index: int, label: str | None = None) -> DeviceSpec:
        """Parse one decoded JSON object (or a string holding one); errors start with the label."""
        label = label if label is not None else f"device_spec[{index}]"
        try:
            if isinstance(obj, str):
                obj = _decode_entry(obj)
            if not isinstance(obj, Mapping):
                raise DeviceSpecError(
                    f"entry {json.dumps(obj, default=str)} is not a JSON object; expecting an object "
                    'such as {"vendor_id": "8086", "product_id": "154c"}'
                )
            return cls._from_mapping(obj, index, label)
        except DeviceSpecError as exc:
            raise DeviceSpecError(f"{label}: {exc.message}") from exc

    @classmethod
    def _from_mapping(cls, obj: Mapping[str, object], index: int, label: str) -> DeviceSpec:
        # Same order of checks as Nova, so a spec with several faults gets Nova's first complaint.
        vendor_id = _hex_id("vendor_id", obj.get("vendor_id"))
        product_id = _hex_id("product_id", obj.get("product_id"))
        raw_devname = obj.get("devname")
        if raw_devname is not None and not isinstance(raw_devname, str):
            raise DeviceSpecError(f"property devname ({json.dumps(raw_devname, default=str)}) must be a string")
        devname = raw_devname or None
        raw_address = obj.get("address")
        # Nova tests truthiness here: an empty address next to a devname is allowed.
        if devname and raw_address:
            raise DeviceSpecError(
                f"property devname ('{devname}') and property address "
                f"({json.dumps(raw_address, default=str)}) cannot both be given: a device_spec selects "
                "by interface name or by PCI address, not both"
            )
        address = parse_address_spec(raw_address)
        tags = parse_tags(obj.items())
        return cls(
            index=index,
            label=label,
            vendor_id=vendor_id,
            product_id=product_id,
            address=address,
            devname=devname,
            tag_pairs=tags,
            source=json.dumps(obj, default=str),
        )

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.tag_pairs)

    @property
    def remote_managed(self) -> bool:
        return self.tags.get("remote_managed") == "true"

    def parent_pf(self, host: HostView) -> PciAddress | None:
        """The PF this spec names (by devname or single address), whose VFs it therefore also covers."""
        if self.devname is not None:
            device = host.by_netdev.get(self.devname)
            return device.address if device is not None and host.pf_at(device.address) else None
        single = self.address.single_address if self.address is not None else None
        return single if single is not None and host.pf_at(single) is not None else None

    def matches(self, device: PciDevice, host: HostView) -> bool:
        """Nova's PciDeviceSpec.match: ids, then the device's address or, for a spec naming a PF, its
        parent's address."""
        if self.vendor_id is not None and self.vendor_id != device.vendor_id.lower():
            return False
        if self.product_id is not None and self.product_id != device.product_id.lower():
            return False
        pf = self.parent_pf(host)
        if pf is not None and device.parent_addr == pf:
            return True
        if self.devname is not None:
            named = host.by_netdev.get(self.devname)
            # A devname that is not on this host matches nothing (Nova: no address, no match).
            return named is not None and named.address == device.address
        return self.address is None or self.address.match(device.address)


def _decode_entry(text: str) -> object:
    try:
        return decode_json(text)
    except ValueError as exc:
        raise DeviceSpecError(f"entry '{text}' is not valid JSON: {exc}") from exc


def parse_device_spec_entry(
    entry: Entry, position: int, first_index: int, name: str = "device_spec"
) -> tuple[DeviceSpec, ...]:
    """Parse config entry number ``position``: a JSON string, or an already-decoded object or list.

    A list yields one spec per item, labelled ``name[position][i]``; their indexes count on from
    ``first_index``.
    """
    label = f"{name}[{position}]"
    obj: object = entry
    if isinstance(entry, str):
        try:
            obj = _decode_entry(entry)
        except DeviceSpecError as exc:
            raise DeviceSpecError(f"{label}: {exc.message}") from exc
    if isinstance(obj, Mapping):
        return (DeviceSpec.parse(obj, first_index, label),)
    if isinstance(obj, list | tuple):
        specs: list[DeviceSpec] = []
        for i, item in enumerate(obj):
            if not isinstance(item, Mapping):
                raise DeviceSpecError(f"{label}[{i}]: list item {json.dumps(item, default=str)} is not a JSON object")
            specs.append(DeviceSpec.parse(item, first_index + i, f"{label}[{i}]"))
        return tuple(specs)
    raise DeviceSpecError(
        f"{label}: entry {json.dumps(obj, default=str)} is neither a JSON object nor a list of objects"
    )


def parse_device_specs(entries: Sequence[Entry], name: str = "device_spec") -> tuple[DeviceSpec, ...]:
    """All entries in order, lists flattened; earlier specs take precedence when several match."""
    specs: list[DeviceSpec] = []
    for position, entry in enumerate(entries):
        specs.extend(parse_device_spec_entry(entry, position, len(specs), name))
    return tuple(specs)
