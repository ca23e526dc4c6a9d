"""Reading one sysfs attribute or link, turning every failure into a warning that names the file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from epa.domain.address import PciAddress
from epa.domain.hexid import parse_hex_id
from epa.errors import InvalidInput

# Attributes a driver does not implement answer these on read; that means "not there", not "broken".
_ABSENT_ERRNOS = {errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL, errno.ENODEV, errno.ENOTDIR}
_MAX_ATTR_BYTES = 4096


class AttrReader:
    """Reads the attributes of one sysfs directory and collects warnings instead of raising."""

    def __init__(self, path: Path | str, warnings: list[str]) -> None:
        # Plain strings: a scan opens ~12 files per function, and pathlib's joins cost more than the reads.
        self.path = str(path)
        self.warnings = warnings

    def join(self, name: str) -> str:
        return f"{self.path}/{name}"

    def warn(self, name: str, problem: str) -> None:
        self.warnings.append(f"{self.join(name)}: {problem}")

    def text(self, name: str, *, required: bool = False) -> str | None:
        """The attribute's text, stripped; None if it is absent (a warning too when ``required``)."""
        try:
            with open(self.join(name), "rb") as fh:
                raw = fh.read(_MAX_ATTR_BYTES)
        except OSError as e:
            if e.errno in _ABSENT_ERRNOS and not required:
                return None
            self.warn(name, f"cannot read: {e.strerror or e}")
            return None
        try:
            text = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            self.warn(name, f"not text: {raw[:16]!r}")
            return None
        if "\x00" in text or not text.isprintable():
            self.warn(name, f"not text: {raw[:16]!r}")
            return None
        return text

    def hex_id(self, name: str, digits: int, *, required: bool = False) -> str | None:
        text = self.text(name, required=required)
        if text is None:
            return None
        try:
            return parse_hex_id(text, name, digits)
        except InvalidInput as e:
            self.warn(name, str(e))
            return None

    def integer(self, name: str) -> int | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            return int(text, 10)
        except ValueError:
            self.warn(name, f"{text!r} is not an integer")
            return None

    def link_name(self, name: str) -> str | None:
        """The last component of the link's target (the kernel's links name their target by it)."""
        try:
            target = os.readlink(self.join(name))
        except OSError as e:
            if e.errno in _ABSENT_ERRNOS:
                return None
            self.warn(name, f"cannot read link: {e.strerror or e}")
            return None
        return os.path.basename(target.rstrip("/")) or None

    def link_address(self, name: str) -> PciAddress | None:
        target = self.link_name(name)
        if target is None:
            return None
        try:
            return PciAddress.parse(target)
        except InvalidInput as e:
            self.warn(name, f"link target: {e}")
            return None

    def link_integer(self, name: str) -> int | None:
        target = self.link_name(name)
        if target is None:
            return None
        if not target.isdigit():
            self.warn(name, f"link target {target!r} is not a number")
            return None
        return int(target)
