"""The words EPA reads as true or false (oslo.utils' ``bool_from_string``, which Nova uses), in one place."""

from __future__ import annotations

TRUE_WORDS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_WORDS = frozenset({"0", "f", "false", "off", "n", "no"})
BOOLEAN_RULE = "true/false, yes/no, on/off, 1/0, t/f or y/n"


def boolean_word(value: object) -> bool | None:
    """``value`` as a boolean: JSON true/false or one of the words above in any case (a number 1 or 0 too);
    None when it is none of them (the caller's error names its own field)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    return None
