"""Parsing of the hex identifiers a PCI function carries (vendor, product, class)."""

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
