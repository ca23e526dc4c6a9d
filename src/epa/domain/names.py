"""Names of things (hosts, servers, flavors, aliases, images) and how an error message quotes a bad value.

One rule for every name: 1-63 characters of ``[A-Za-z0-9._-]`` starting with a letter or digit - what fits a
DNS label, a file name and a URL path segment without quoting (an alias named ``a/b`` could be created and
never deleted: no URL names it). An error quotes at most a bounded prefix of a value, so that a megabyte of
bad name does not come back as a megabyte of error."""

from __future__ import annotations

import re
from typing import TypeGuard

from epa.errors import InvalidInput

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
NAME_RULE = "1-63 characters of [A-Za-z0-9._-] starting with a letter or digit"
SHOWN_MAX = 80


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """``repr(value)``, or its first ``limit`` characters and the value's size when it is longer."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters as text"
    return f"{text[:limit]}... ({size})"


def is_valid_name(value: object) -> TypeGuard[str]:
    """True for 1-63 characters of ``[A-Za-z0-9._-]`` starting with a letter or digit."""
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None


def check_name(value: object, what: str, error: type[InvalidInput] = InvalidInput) -> str:
    """Return ``value`` if it is a valid name, else raise ``error`` naming ``what`` (and a prefix of the value)."""
    if not is_valid_name(value):
        raise error(f"{what}: name ({shown(value)}) must be {NAME_RULE}")
    return value
