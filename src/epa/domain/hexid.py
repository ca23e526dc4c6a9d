"""The hex identifiers a PCI function carries (vendor, product, class): parsed leniently from what a host
reports (sysfs, libvirt), checked strictly where a person writes one (an alias, an ``[[sriov]]`` entry)."""

from __future__ import annotations

from epa.errors import InvalidHexId


def parse_hex_id(raw: str, field: str, digits: int) -> str:
    """Return ``raw`` (``0x8086``, ``8086``, ``8086\\n``) as exactly ``digits`` lower-case hex digits."""
    text = raw.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if not text or any(c not in "0123456789abcdef" for c in text):
        raise InvalidHexId(f"{field} {raw.strip()!r} is not a hex number")
    value = int(text, 16)
    if value >= 16**digits:
        raise InvalidHexId(f"{field} {raw.strip()!r} has more than {digits} hex digits")
    return f"{value:0{digits}x}"


def is_hex_id(value: object, digits: int = 4) -> bool:
    """Exactly ``digits`` hex digits, any case, nothing else: how a person writes an id (``8086``, ``37C9``)."""
    return (
        isinstance(value, str)
        and len(value) == digits
        and value.isascii()
        and all(c in "0123456789abcdefABCDEF" for c in value)
    )
