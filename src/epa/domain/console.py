"""A guest's serial console output made safe to carry and to show: bytes from a guest are anything
(escape sequences that clear or retitle a terminal, NULs PostgreSQL cannot store, invalid UTF-8), so
every character but a printable one, a newline or a tab becomes a visible escape (``\\x1b``, ``\\u200b``).
Escaping is idempotent: the agent escapes what it reads, the API escapes what it is sent again."""

from __future__ import annotations

import unicodedata

# What an agent sends and the API keeps of one server's console: the end of it.
MAX_TAIL_BYTES = 64 * 1024
MAX_LINES = 1000
_KEEP = frozenset("\n\t")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` with every control, format, surrogate or unassigned character written as an escape;
    carriage returns are dropped (a serial console ends its lines with CR LF)."""
    out = []
    for ch in text.replace("\r\n", "\n"):
        if ch in _KEEP or (ch.isprintable() and unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Cn")):
            out.append(ch)
        else:
            out.append(_escape_char(ch))
    return "".join(out)


def from_bytes(raw: bytes) -> str:
    """Console bytes as escaped text; an invalid UTF-8 byte is shown as ``\\xNN``."""
    return escape(raw.decode("utf-8", errors="backslashreplace"))


def tail_lines(text: str, count: int) -> list[str]:
    """The last ``count`` lines of ``text`` (a trailing newline ends the last line, it adds none)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines[-count:] if count > 0 else []
