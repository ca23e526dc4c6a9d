"""A tiny bootable image made from what a Debian host has: its own kernel (``linux-image-amd64``) and an
initramfs of ``busybox-static`` whose init mounts the NoCloud seed and prints, on the serial console,
the host name and user-data marker it finds there, the guest's PCI functions and (with a NIC driver
added, as the SR-IOV lab's igbvf) its netdevs and their MACs. For the tests that
boot a server for real and for the demo; boots in seconds under TCG, needs no network and no disk.

The initramfs is a newc cpio archive written here, so nothing is shelled out."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
# Modules the seed needs (Debian builds them as modules), in load order.
SEED_MODULES = (
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/drivers/block/virtio_blk.ko",
    "kernel/drivers/cdrom/cdrom.ko",
    "kernel/fs/isofs/isofs.ko",
)
CMDLINE = "console=ttyS0 panic=-1 quiet loglevel=1"
MARKER_KEY = "epa_marker"

# The guest's init: everything it prints starts with "EPA " so a test finds it among the kernel's lines.
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {modules}; do insmod /lib/modules/$m 2>/dev/null; done
echo "EPA init started"
for i in 1 2 3 4 5 6 7 8 9 10; do
  for d in /dev/vd?; do
    [ -b "$d" ] || continue
    if mount -t iso9660 -o ro "$d" /seed 2>/dev/null; then
      if [ -f /seed/meta-data ]; then break 2; fi
      umount /seed
    fi
  done
  sleep 1
done
if [ -f /seed/meta-data ]; then
  host=$(sed -n 's/.*"local-hostname": *"\\([^"]*\\)".*/\\1/p' /seed/meta-data)
  hostname "$host"
  echo "EPA hostname $(hostname)"
  echo "EPA instance $(sed -n 's/.*"instance-id": *"\\([^"]*\\)".*/\\1/p' /seed/meta-data)"
  echo "EPA user-data $(grep -o '{marker}=[A-Za-z0-9_-]*' /seed/user-data)"
else
  echo "EPA no seed found"
fi
for f in /sys/bus/pci/devices/*; do
  echo "EPA pci $(basename $f) $(cat $f/vendor):$(cat $f/device) class $(cat $f/class)"
done
# An image with a NIC driver waits (up to {net_wait} s) for its netdevs, and prints each with its MAC.
for i in $(seq 1 {net_wait}); do
  [ -n "$(ls /sys/class/net | grep -v '^lo$')" ] && break
  sleep 1
done
for n in /sys/class/net/*; do
  [ "$(basename $n)" = lo ] || echo "EPA net $(basename $n) $(cat $n/address)"
done
echo "EPA boot done"
while true; do sleep 3600; done
"""


@dataclass(frozen=True, slots=True)
class BootImage:
    kernel: Path
    initrd: Path
    cmdline: str = CMDLINE


def host_kernel(boot: Path = Path("/boot")) -> Path | None:
    """The newest ``vmlinuz-*`` under ``boot`` that the modules of its release sit beside."""
    found = sorted(boot.glob("vmlinuz-*"))
    for kernel in reversed(found):
        release = kernel.name.removeprefix("vmlinuz-")
        if Path("/lib/modules", release).is_dir() and os.access(kernel, os.R_OK):
            return kernel
    return None


def _pad(n: int) -> bytes:
    return b"\0" * ((4 - n % 4) % 4)


def _entry(name: str, mode: int, data: bytes = b"", ino: int = 0) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    header = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
    return header + encoded + _pad(len(header) + len(encoded)) + data + _pad(len(data))


def write_initramfs(path: Path, release: str, busybox: Path = BUSYBOX, drivers: tuple[str, ...] = ()) -> Path:
    """A newc cpio archive with busybox, the seed's modules of kernel ``release`` (and ``drivers``, module
    paths under its ``/lib/modules``: a NIC driver, whose netdevs the init then waits for) and the init."""
    modules = Path("/lib/modules", release)
    wanted = (*SEED_MODULES, *drivers)
    names = [m.rsplit("/", 1)[1] for m in wanted]
    init = INIT.format(modules=" ".join(names), marker=MARKER_KEY, net_wait=60 if drivers else 0).encode()
    entries = [
        _entry(d, stat.S_IFDIR | 0o755, ino=i)
        for i, d in enumerate(("bin", "dev", "proc", "sys", "seed", "lib", "lib/modules"), start=1)
    ]
    entries.append(_entry("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes(), ino=20))
    entries.append(_entry("init", stat.S_IFREG | 0o755, init, ino=21))
    for i, module in enumerate(wanted, start=30):
        entries.append(
            _entry(
                f"lib/modules/{module.rsplit('/', 1)[1]}", stat.S_IFREG | 0o644, (modules / module).read_bytes(), ino=i
            )
        )
    entries.append(_entry("TRAILER!!!", 0))
    path.write_bytes(b"".join(entries))
    return path


def make_boot_image(where: Path, kernel: Path | None = None, drivers: tuple[str, ...] = ()) -> BootImage | None:
    """Kernel and initramfs under ``where``; None when this host has no kernel or busybox to make it from."""
    kernel = kernel or host_kernel()
    if kernel is None or not BUSYBOX.is_file():
        return None
    release = kernel.name.removeprefix("vmlinuz-")
    if not all((Path("/lib/modules", release) / m).is_file() for m in (*SEED_MODULES, *drivers)):
        return None
    where.mkdir(parents=True, exist_ok=True)
    initrd = write_initramfs(where / "initramfs.cpio", release, drivers=drivers)
    return BootImage(kernel, initrd)
