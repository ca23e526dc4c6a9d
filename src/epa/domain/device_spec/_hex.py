"""Nova's hex-valued device_spec properties (vendor_id, product_id, address fields), same words in errors."""

from __future__ import annotations

from epa.errors import DeviceSpecError

ANY = "*"

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_hex_property(prop: str, raw: str, maximum: int) -> int | None:
    """Return the value of ``raw`` (already stripped), or None for the wildcard ``*``.

    Nova hands the text to ``int(text, 16)``; we accept what that accepts for a sane config (an optional
    ``0x``, any case) and refuse what only Python's int() would take (signs, ``_`` separators), since
    Nova would turn those into nonsense such as ``'-001'``.
    """
    if raw == ANY:
        return None
    digits = raw[2:] if raw[:2].lower() == "0x" else raw
    if not digits or any(c not in _HEX_DIGITS for c in digits):
        raise DeviceSpecError(f"property {prop} ('{raw}') does not parse as a hex number")
    value = int(digits, 16)
    if value > maximum:
        raise DeviceSpecError(f"property {prop} ({raw}) is greater than the maximum allowable value ({maximum:X})")
    return value
