"""Each server's root disk: a qcow2 overlay on the cached image, made and deleted through libvirt's
storage API in a directory pool the agent owns (libvirt runs qemu-img itself; EPA never shells out).

Volumes are named after the server (``epa-<server id>.qcow2``), so that after a crash the reconciler
tells an orphan (its server is gone) from a disk still in use by listing the pool - the pool, not a
record of the agent's, is the truth about what is on the host."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from epa.errors import EpaError
from epa.libvirt_client import LibvirtConnection

POOL_PREFIX = "epa-disks-"
_VOLUME = re.compile(r"epa-([0-9a-f-]{36})\.qcow2")


class DiskError(EpaError):
    """A server's disk cannot be made or used (its base image vanished, the pool failed)."""

    code = "disk_failed"


def _text(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def pool_xml(name: str, path: str) -> str:
    root = etree.Element("pool", type="dir")
    _text(root, "name", name)
    _text(_text(root, "target"), "path", path)
    return etree.tostring(root, encoding="unicode")


def overlay_xml(name: str, capacity: int, backing: str, backing_format: str) -> str:
    """A qcow2 volume of ``capacity`` bytes whose reads fall through to ``backing`` (never written)."""
    root = etree.Element("volume", type="file")
    _text(root, "name", name)
    _text(root, "capacity", str(capacity), unit="bytes")
    _text(_text(root, "target"), "format", type="qcow2")
    store = _text(root, "backingStore")
    _text(store, "path", backing)
    _text(store, "format", type=backing_format)
    return etree.tostring(root, encoding="unicode")


def volume_name(server_id: str) -> str:
    return f"epa-{server_id}.qcow2"


@dataclass(frozen=True, slots=True)
class Volume:
    name: str
    server_id: str
    path: str
    backing: str | None


def _volume(name: str, xml: str) -> Volume | None:
    match = _VOLUME.fullmatch(name)
    if match is None:
        return None
    tree = etree.fromstring(xml.encode())
    return Volume(name, match.group(1), tree.findtext("target/path") or "", tree.findtext("backingStore/path"))


def pool_name(host: str) -> str:
    """One pool per host name: agents of several (simulated) hosts may share one libvirt."""
    return POOL_PREFIX + host


class Disks:
    """The overlays in pool ``pool`` at ``path`` on connection ``conn`` (the pool is made when missing)."""

    def __init__(self, conn: LibvirtConnection, pool: str, path: str) -> None:
        self.conn = conn
        self.pool = pool
        self.path = path
        conn.ensure_pool(pool, pool_xml(pool, path))

    def volumes(self) -> list[Volume]:
        """EPA's overlays in the pool (other files there are not EPA's and are left alone)."""
        out = []
        for name, xml in self.conn.list_volumes(self.pool):
            volume = _volume(name, xml)
            if volume is not None:
                out.append(volume)
        return out

    def ensure(self, server_id: str, base: str, base_format: str, capacity: int, exists: bool) -> str:
        """The path of the server's overlay on ``base``, made when missing. ``exists``: whether the base
        file is there; an overlay whose base vanished (a host crash, an operator's clean-up) cannot boot."""
        name = volume_name(server_id)
        current = next((v for v in self.volumes() if v.name == name), None)
        if not exists:
            raise DiskError(
                f"disk of server {server_id}: its base image {base} is gone from this host"
                + (" (the overlay is kept; it cannot boot without it)" if current else "")
            )
        if current is not None:
            if current.backing not in (None, base):
                raise DiskError(f"disk {current.path}: its base is {current.backing}, not {base}")
            return current.path
        return self.conn.create_volume(self.pool, overlay_xml(name, capacity, base, base_format))

    def delete(self, server_id: str) -> None:
        self.conn.delete_volume(self.pool, volume_name(server_id))

    def orphans(self, live: set[str]) -> list[Volume]:
        """Overlays whose server is not among ``live`` (server ids the API lists for this host)."""
        return [v for v in self.volumes() if v.server_id not in live]
