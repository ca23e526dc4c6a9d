"""Image files for tests, made with the real tools (qemu-img, Debian's kernel and busybox) or written to
the byte as their formats say, for the broken ones."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

QEMU_IMG = "qemu-img"


def qemu_img() -> str:
    found = shutil.which(QEMU_IMG)
    if found is None:
        pytest.fail("qemu-img is not on PATH (Debian package qemu-utils; ./dev installs it)")
    return found


def qcow2(path: Path, size: str = "64M", backing: Path | None = None) -> Path:
    """A real qcow2 made by qemu-img (with ``backing`` as its backing file when given)."""
    args = [qemu_img(), "create", "-q", "-f", "qcow2"]
    if backing is not None:
        args += ["-b", str(backing), "-F", "raw"]
    subprocess.run([*args, str(path), size], check=True)
    return path


def raw(path: Path, size: int = 1024 * 1024) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def qcow2_header(version: int = 3, size: int = 1 << 26, backing: bytes = b"", incompatible: int = 0) -> bytes:
    """A qcow2 header as the format's spec lays it out (for the cases qemu-img will not make)."""
    backing_offset = 104 if backing else 0
    head = struct.pack(
        ">4sIQIIQIIQQIIQ", b"QFI\xfb", version, backing_offset, len(backing), 16, size, 0, 0, 0, 0, 0, 0, 0
    )
    if version == 3:
        head += struct.pack(">QQQII", incompatible, 0, 0, 4, 104)
    return (head + backing).ljust(64 * 1024, b"\0")
