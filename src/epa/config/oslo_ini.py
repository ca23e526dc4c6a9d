"""An INI reader with oslo.config's rules, for reading an existing nova.conf as Nova reads it.

Not configparser: nova.conf repeats multi-valued options (``device_spec =`` on several lines), which
configparser refuses or collapses. The rules follow oslo_config.iniparser: ``#`` / ``;`` comment lines
(only at the start of a line; there are no inline comments), ``key = value`` or ``key: value`` (whichever
separator comes first), one pair of matching quotes around the value removed, lines starting with
whitespace continue the previous value (joined with a newline), a blank or comment line ends it, and
section names other than ``DEFAULT`` are case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass

from epa.errors import ConfigError


@dataclass(frozen=True, slots=True)
class IniValue:
    """One assignment: its value and the line its key is on (1-based)."""

    value: str
    line: int


# section -> key -> every value, in file order
IniData = dict[str, dict[str, list[IniValue]]]


def _section_name(name: str) -> str:
    return name if name == "DEFAULT" else name.lower()


def _split_assignment(text: str) -> tuple[str, str]:
    colon, equal = text.find(":"), text.find("=")
    if colon < 0 and equal < 0:
        raise ValueError("expected 'key = value' or 'key: value'")
    at = equal if colon < 0 or 0 <= equal < colon else colon
    key, value = text[:at].strip(), text[at + 1 :].strip()
    if not key:
        raise ValueError("the key before the separator is empty")
    if value and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return key, value


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.data: IniData = {}
        self.section: str | None = None
        # the assignment being read: (section, key, line of the key), and its lines so far
        self.pending: tuple[str, str, int] | None = None
        self.lines: list[str] = []

    def error(self, lineno: int, line: str, why: str) -> ConfigError:
        return ConfigError(f"{self.source}:{lineno}: {why}: {line.strip()!r}")

    def flush(self) -> None:
        if self.pending is None:
            return
        section, key, key_line = self.pending
        self.data[section].setdefault(key, []).append(IniValue("\n".join(self.lines), key_line))
        self.pending, self.lines = None, []

    def feed(self, lineno: int, raw: str) -> None:
        line = raw.rstrip()
        if not line:
            self.flush()
        elif line[0] in " \t":
            if self.pending is None:
                raise self.error(lineno, line, "continuation line without a value to continue")
            self.lines.append(line.lstrip())
        else:
            self.flush()
            if line.startswith("["):
                if not line.endswith("]"):
                    raise self.error(lineno, line, "section header without a closing ']'")
                if len(line) <= 2:
                    raise self.error(lineno, line, "section header without a name")
                self.section = _section_name(line[1:-1])
                self.data.setdefault(self.section, {})
            elif line[0] in "#;":
                pass
            else:
                try:
                    key, value = _split_assignment(line)
                except ValueError as exc:
                    raise self.error(lineno, line, str(exc)) from exc
                if self.section is None:
                    raise self.error(lineno, line, "assignment before any [section]")
                self.pending, self.lines = (self.section, key, lineno), [value]


def parse_ini(text: str, source: str) -> IniData:
    """Parse ``text``; ``source`` (the file name) starts every error message."""
    reader = _Reader(source)
    for lineno, line in enumerate(text.splitlines(), start=1):
        reader.feed(lineno, line)
    reader.flush()
    return reader.data
