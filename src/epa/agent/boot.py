"""What a server boots, made real on its host beside its domain: the image's parts from the cache, a
qcow2 overlay on a disk image (through libvirt's storage pool), the NoCloud seed, and the file its
serial console is logged to. The reconciler calls :meth:`Boot.prepare` before it defines a domain,
:meth:`Boot.remove` when the server goes, and :meth:`Boot.collect` each pass for what a crash left
behind (files and volumes of servers the API no longer lists for this host)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epa.agent.console import ConsoleTails
from epa.agent.images import ImageCache, ImageError, image_ref
from epa.agent.seed import seed_files, write_seed
from epa.domain.image import ImageKind
from epa.errors import LibvirtUnsupported
from epa.libvirt_client import LibvirtConnection
from epa.virt import DiskFormat, DiskSpec, DomainSpec, KernelSpec
from epa.virt.disks import DiskError, Disks, pool_name

log = logging.getLogger("epa.agent.boot")

_SERVER_FILE = re.compile(r"([0-9a-f-]{36})\.(seed\.iso|console\.log)")
# The guest's serial port is where its kernel and cloud-init write: say so on a kernel image's command
# line unless the image's own already names a console.
_CONSOLE_ARG = "console=ttyS0"
GIB = 1024**3


@dataclass(frozen=True, slots=True)
class BootFiles:
    """The paths a server's domain uses (None: not this server's)."""

    disk: str | None = None
    disk_format: DiskFormat = DiskFormat.QCOW2
    seed: str | None = None
    kernel: KernelSpec | None = None
    console_log: str | None = None

    def apply(self, spec: DomainSpec) -> DomainSpec:
        disk = DiskSpec(self.disk, self.disk_format) if self.disk is not None else None
        return dataclasses.replace(spec, disk=disk, seed=self.seed, kernel=self.kernel, console_log=self.console_log)


def parts_in_use(servers: Iterable[Mapping[str, Any]]) -> set[str]:
    """sha256 of every part the host's servers boot: what the cache must keep."""
    out: set[str] = set()
    for server in servers:
        with contextlib.suppress(ImageError, ValueError):
            ref = image_ref(server)
            if ref is not None:
                out.update(p.sha256 for p in ref.parts.values())
    return out


def root_disk_capacity(server: Mapping[str, Any]) -> int:
    """The size in bytes of a disk image server's overlay: its flavor's ``disk_gb`` when set, else the
    image's virtual size. A ``disk_gb`` smaller than the image cannot hold it: a ``DiskError`` naming both."""
    image: Mapping[str, Any] = server.get("image") or {}
    parts: list[Mapping[str, Any]] = image.get("parts") or []
    disk: Mapping[str, Any] = next((p for p in parts if p.get("name") == "disk"), {})
    virtual = int(disk.get("virtual_size") or disk.get("size") or 0)
    flavor: Mapping[str, Any] = server.get("flavor") or {}
    disk_gb = flavor.get("disk_gb")
    if disk_gb is None:
        return virtual
    wanted = int(disk_gb) * GIB
    if wanted < virtual:
        raise DiskError(
            f"flavor {flavor.get('name')}: disk_gb {disk_gb} GiB ({wanted} bytes) is smaller than the virtual "
            f"size of image {image.get('name')} ({virtual} bytes, {virtual / GIB:.2f} GiB)"
        )
    return max(virtual, wanted)


class Boot:
    """Boot files of host ``host`` under ``state_dir`` (seeds and console logs, ``<server id>.*``), disks
    in a libvirt directory pool at ``state_dir/disks``, image parts in ``cache``."""

    def __init__(self, cache: ImageCache, state_dir: Path, host: str) -> None:
        self.cache = cache
        self.state_dir = state_dir
        self.pool = pool_name(host)
        self.consoles = ConsoleTails()
        state_dir.mkdir(parents=True, exist_ok=True)
        # QEMU runs as its own user on a real host: it must reach the seed and write the console log.
        state_dir.chmod(0o755)
        self.disks_dir = state_dir / "disks"

    def console_path(self, server_id: str) -> Path:
        return self.state_dir / f"{server_id}.console.log"

    def console_update(self, server_id: str) -> str | None:
        """The end of the server's console when it changed since it was last sent."""
        return self.consoles.changed(server_id, self.console_path(server_id))

    def _disks(self, conn: LibvirtConnection) -> Disks:
        self.disks_dir.mkdir(mode=0o755, exist_ok=True)
        try:
            return Disks(conn, self.pool, str(self.disks_dir))
        except LibvirtUnsupported as e:
            raise DiskError(
                f"the hypervisor connection {conn.uri} has no storage pools for a disk overlay "
                f"(qemu:///embed has none; use qemu:///system): {e}"
            ) from e

    def prepare(
        self, conn: LibvirtConnection, server: Mapping[str, Any], in_use: Sequence[str] | set[str]
    ) -> BootFiles:
        """Make (or find) everything the server's domain boots; an ``EpaError`` naming what is missing."""
        ref = image_ref(server)
        if ref is None:
            return BootFiles()
        server_id = str(server["id"])
        # Checked before anything is fetched or written: a flavor too small for its image fails at once.
        capacity = root_disk_capacity(server) if ref.kind is ImageKind.DISK else 0
        files: dict[str, Path] = {name: self.cache.ensure(part, in_use) for name, part in ref.parts.items()}
        seed = write_seed(self.state_dir / f"{server_id}.seed.iso", seed_files(server))
        console = self.console_path(server_id)
        console.touch(mode=0o644, exist_ok=True)
        if ref.kind is ImageKind.KERNEL:
            cmdline = ref.cmdline or ""
            if "console=" not in cmdline:
                cmdline = f"{cmdline} {_CONSOLE_ARG}".strip()
            kernel = KernelSpec(str(files["kernel"]), str(files["initrd"]), cmdline)
            return BootFiles(seed=str(seed), kernel=kernel, console_log=str(console))
        part = ref.parts["disk"]
        base = files["disk"]
        disk_path = self._disks(conn).ensure(server_id, str(base), part.format, capacity, base.is_file())
        return BootFiles(disk=disk_path, seed=str(seed), console_log=str(console))

    def remove(self, conn: LibvirtConnection, server: Mapping[str, Any]) -> list[str]:
        """Delete the server's overlay, seed and console log; what was removed, one line each."""
        server_id = str(server.get("id"))
        self.consoles.forget(server_id)
        done = []
        if server.get("image") is not None and (server.get("image") or {}).get("kind") == ImageKind.DISK.value:
            with contextlib.suppress(DiskError):
                self._disks(conn).delete(server_id)
                done.append(f"deleted the disk of server {server_id}")
        for path in (self.state_dir / f"{server_id}.seed.iso", self.console_path(server_id)):
            if path.exists():
                path.unlink(missing_ok=True)
                done.append(f"deleted {path}")
        return done

    def collect(self, conn: LibvirtConnection, live: set[str]) -> list[str]:
        """Remove the disks and files of servers not in ``live`` (a crash between steps left them)."""
        done = []
        # No disks directory: this agent never made a disk (and need not make a pool to learn that).
        if self.disks_dir.is_dir():
            disks = self._disks(conn)
            for volume in disks.orphans(live):
                disks.delete(volume.server_id)
                done.append(f"deleted orphan disk {volume.path} (server {volume.server_id} is gone)")
        for path in self.state_dir.iterdir():
            match = _SERVER_FILE.fullmatch(path.name)
            if match is not None and match.group(1) not in live:
                path.unlink(missing_ok=True)
                done.append(f"deleted orphan {path}")
        return done
