"""Images: what a server boots from, and how EPA tells what a file is from its first bytes (never from
its name). Pure rules, no I/O: the inventory feeds the bytes of an upload through :class:`Probe` and
the agent checks what it fetched against the same values.

Two kinds: a ``disk`` image has one part, ``disk`` (qcow2 or raw); a ``kernel`` image (direct kernel
boot, for appliances and tests) has two, ``kernel`` (an x86 bzImage) and ``initrd`` (a cpio archive,
compressed or not), and a default kernel command line."""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from epa.errors import InvalidInput

# Enough for every header probed here: qcow2's is 104 bytes, an ISO 9660 volume descriptor sits at 32769.
PROBE_BYTES = 64 * 1024
SECTOR = 512
# Below this a file is no disk anyone boots (and a typo'd path to a small text file is caught early).
MIN_DISK_BYTES = 64 * 1024
MAX_CMDLINE = 2048
QCOW2_MAGIC = b"QFI\xfb"
# qcow2 v3 incompatible feature bits: 0 dirty, 1 corrupt, 2 external data file, 3 compression type,
# 4 extended L2. An external data file names a host path the image's author chose, like a backing file.
_QCOW2_EXTERNAL_DATA = 1 << 2
_QCOW2_CORRUPT = 1 << 1
_QCOW2_KNOWN_INCOMPATIBLE = (1 << 5) - 1
# A command line is one line of printable ASCII.
_CMDLINE = re.compile(r"[\x20-\x7e]*")


class InvalidImage(InvalidInput):
    """An image's content or description is not something EPA will boot; the message says what."""

    code = "invalid_image"


class ImageKind(enum.StrEnum):
    DISK = "disk"
    KERNEL = "kernel"


class ImageFormat(enum.StrEnum):
    """What a part holds: a disk (``qcow2``, ``raw``), a ``kernel`` (bzImage) or an ``initrd``."""

    QCOW2 = "qcow2"
    RAW = "raw"
    KERNEL = "bzimage"
    INITRD = "initrd"


class ImageStatus(enum.StrEnum):
    """``queued`` until every part has been uploaded whole, then ``active`` (servers may use it)."""

    QUEUED = "queued"
    ACTIVE = "active"


PARTS: dict[ImageKind, tuple[str, ...]] = {
    ImageKind.DISK: ("disk",),
    ImageKind.KERNEL: ("kernel", "initrd"),
}


def parse_kind(value: object) -> ImageKind:
    if isinstance(value, str) and value in {k.value for k in ImageKind}:
        return ImageKind(value)
    raise InvalidImage(f"image kind ({value!r}) must be one of {', '.join(k.value for k in ImageKind)}")


def check_part(kind: ImageKind, part: object) -> str:
    parts = PARTS[kind]
    if not isinstance(part, str) or part not in parts:
        raise InvalidImage(f"image part ({part!r}) must be one of {', '.join(parts)} for a {kind.value} image")
    return part


def check_cmdline(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_CMDLINE or not _CMDLINE.fullmatch(value):
        raise InvalidImage(f"cmdline ({str(value)[:60]!r}) must be at most {MAX_CMDLINE} printable ASCII characters")
    return value


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a part turned out to be: its format and, for a disk, the size the guest sees."""

    format: ImageFormat
    virtual_size: int | None


# Magic numbers of formats EPA refuses, so the error can say what the file is rather than only what it is not.
_REFUSED: tuple[tuple[int, bytes, str], ...] = (
    (0, b"KDMV", "a VMDK image"),
    (0, b"vhdxfile", "a VHDX image"),
    (0, b"conectix", "a VHD image"),
    (0, b"LUKS\xba\xbe", "a LUKS-encrypted volume"),
    (0x40, b"\x7f\x10\xda\xbe", "a VirtualBox VDI image"),
    (0x8001, b"CD001", "an ISO 9660 CD image (attach it as a CD-ROM, not as a boot disk)"),
)
_INITRD_MAGIC: tuple[bytes, ...] = (
    b"070701",  # newc cpio
    b"070702",  # newc cpio with checksums
    b"\x1f\x8b",  # gzip
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstd
    b"\x02\x21\x4c\x18",  # lz4 legacy
    b"BZh",  # bzip2
    b"\x89LZO",  # lzop
    b"\x5d\x00\x00",  # lzma
)


def _qcow2(head: bytes, where: str) -> ProbeResult:
    if len(head) < 72:
        raise InvalidImage(f"{where}: a qcow2 header is 72 bytes at least; the file has {len(head)}")
    version, backing_offset, backing_size, cluster_bits, size, crypt = struct.unpack_from(">IQIIQI", head, 4)
    if version not in (2, 3):
        raise InvalidImage(f"{where}: qcow2 version ({version}) must be 2 or 3")
    if backing_offset != 0 or backing_size != 0:
        # A backing file is a host path chosen by whoever made the image: QEMU would open it for the guest.
        raise InvalidImage(
            f"{where}: the qcow2 image has a backing file; upload a standalone image "
            "(qemu-img convert -O qcow2 IN OUT flattens it)"
        )
    if not 9 <= cluster_bits <= 21:
        raise InvalidImage(f"{where}: qcow2 cluster_bits ({cluster_bits}) must be in 9..21")
    if crypt != 0:
        raise InvalidImage(f"{where}: the qcow2 image is encrypted (crypt_method {crypt}); EPA boots plain images")
    if size == 0:
        raise InvalidImage(f"{where}: the qcow2 image has a virtual size of 0 bytes")
    if version == 3:
        if len(head) < 104:
            raise InvalidImage(f"{where}: a qcow2 v3 header is 104 bytes at least; the file has {len(head)}")
        (incompatible,) = struct.unpack_from(">Q", head, 72)
        if incompatible & _QCOW2_EXTERNAL_DATA:
            raise InvalidImage(f"{where}: the qcow2 image keeps its data in an external file; upload a standalone one")
        if incompatible & _QCOW2_CORRUPT:
            raise InvalidImage(f"{where}: the qcow2 image is marked corrupt (qemu-img check -r all repairs it)")
        if incompatible & ~_QCOW2_KNOWN_INCOMPATIBLE:
            raise InvalidImage(f"{where}: the qcow2 image needs features ({incompatible:#x}) EPA does not know")
    return ProbeResult(ImageFormat.QCOW2, size)


def probe_head(part: str, head: bytes, where: str) -> ImageFormat:
    """The format of a part from its first :data:`PROBE_BYTES` bytes (fewer when the file is shorter);
    :class:`InvalidImage` naming what the file is when EPA will not use it. A raw disk's checks that
    need the whole size are :func:`finish`'s."""
    if part == "kernel":
        if len(head) < 0x206 or head[0x202:0x206] != b"HdrS":
            raise InvalidImage(f"{where}: not an x86 Linux kernel (no bzImage 'HdrS' header at offset 0x202)")
        return ImageFormat.KERNEL
    if part == "initrd":
        if not head.startswith(_INITRD_MAGIC):
            raise InvalidImage(f"{where}: not an initrd (neither a cpio archive nor a known compressed one)")
        return ImageFormat.INITRD
    if head.startswith(QCOW2_MAGIC):
        return ImageFormat.QCOW2
    for offset, magic, what in _REFUSED:
        if head[offset : offset + len(magic)] == magic:
            raise InvalidImage(f"{where}: the file is {what}; a disk image must be qcow2 or raw")
    return ImageFormat.RAW


def finish(part: str, head: bytes, size: int, where: str) -> ProbeResult:
    """What the whole part is, once all ``size`` bytes are in (``head`` its first bytes)."""
    fmt = probe_head(part, head, where)
    if size == 0:
        raise InvalidImage(f"{where}: the file is empty")
    if fmt is ImageFormat.QCOW2:
        return _qcow2(head, where)
    if fmt is ImageFormat.RAW:
        if size < MIN_DISK_BYTES:
            raise InvalidImage(
                f"{where}: {size} bytes is too small for a disk image (at least {MIN_DISK_BYTES}); "
                "the file is neither qcow2 nor a raw disk"
            )
        if size % SECTOR:
            raise InvalidImage(
                f"{where}: a raw disk is a whole number of {SECTOR}-byte sectors; {size} bytes is not "
                "(the file is neither qcow2 nor a raw disk)"
            )
        return ProbeResult(ImageFormat.RAW, size)
    return ProbeResult(fmt, None)
