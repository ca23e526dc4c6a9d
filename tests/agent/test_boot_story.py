"""Servers that boot, on the agent's side: against the real API (uvicorn in a thread) and libvirt's
``test:///`` driver (its storage pool and volumes in memory), the reconciler fetches the server's image
with the agent's token, verifies it, makes the overlay and the NoCloud seed, defines a domain that
boots them with its serial console logged, and removes it all with the server. Bad cases: a checksum
mismatch, a full cache, an image deleted, a base that vanished, a crash that left files behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from epa.agent.boot import Boot
from epa.agent.images import ImageCache
from epa.agent.reconcile import Reconciler
from epa.agent.seed import read_seed
from epa.client import ApiClient
from epa.domain.host import HostReport, NumaCell
from epa.inventory import Database
from epa.libvirt_client import LibvirtConnection, open_connection
from epa.simulate.hosts import nfv_host
from epa.simulate.libvirt_node import write_node_xml
from epa.virt.disks import pool_name
from support import images
from support.served import serve_in_thread

HOST = "nfv-1"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@there"


@dataclass
class World:
    admin: ApiClient
    agent: ApiClient
    conn: LibvirtConnection
    state: Path
    cache_bytes: int

    def reconciler(self, cache_bytes: int | None = None) -> Reconciler:
        cells = (NumaCell(0, (0, 1), 64_000, 0),)
        cache = ImageCache(self.state / "images", cache_bytes or self.cache_bytes, self.agent)
        return Reconciler(
            self.agent,
            HOST,
            lambda: self.conn,
            lambda: HostReport(cells, ()),
            None,
            boot=Boot(cache, self.state, HOST),
        )

    def upload(self, name: str, path: Path) -> dict[str, Any]:
        self.admin.create_image(name)
        return self.admin.upload_image_part(name, "disk", path)

    def create(self, name: str, image: str, **boot: Any) -> dict[str, Any]:
        server = self.admin.create_server(name, "small", (), boot={"image": image, **boot})
        assert server["status"] == "scheduled", server
        return server


@pytest.fixture
def world(sqlite_db: Database, tmp_path: Path) -> Iterator[World]:
    with serve_in_thread(sqlite_db) as s, ApiClient(s.url, s.admin) as admin:
        token = admin.create_host(HOST)["agent_token"]
        with (
            ApiClient(s.url, token) as agent,
            open_connection(write_node_xml(nfv_host(), tmp_path / "n.xml")) as conn,
        ):
            agent.put_inventory(HOST, 0, (NumaCell(0, (0, 1), 64_000, 0),), ())
            admin.create_flavor({"name": "small", "vcpus": 1, "memory_mb": 256})
            yield World(admin, agent, conn, tmp_path / "state", 64 * 1024 * 1024)


def _volumes(w: World) -> list[str]:
    return [name for name, _ in w.conn.list_volumes(pool_name(HOST))]


def test_a_server_boots_its_image_with_seed_and_console_and_leaves_nothing(world: World, tmp_path: Path) -> None:
    disk = images.qcow2(tmp_path / "d.qcow2", "3G")
    image = world.upload("deb", disk)
    server = world.create("vm-1", "deb", ssh_keys=[KEY], user_data="#cloud-config\nruncmd: [echo EPA-MARK]\n")
    summary = world.reconciler().reconcile_once()
    assert summary.failures == []
    server = world.admin.get_server(server["id"])
    assert server["status"] == "active"
    # The part was fetched with the agent's token, verified, and named by its checksum.
    cached = world.state / "images" / image["parts"][0]["sha256"]
    assert cached.read_bytes() == disk.read_bytes()
    # The agent told the API what its cache now holds: the host shows it, named by its image.
    held = world.admin.get_host(HOST)["images"]["parts"]
    assert held == [{"sha256": cached.name, "size": disk.stat().st_size, "images": ["deb"]}]
    xml = etree.fromstring(server["domain_xml"].encode())
    (root_disk, seed_disk) = xml.findall("devices/disk")
    assert root_disk.find("source").get("file") == str(world.state / "disks" / f"epa-{server['id']}.qcow2")
    assert root_disk.find("driver").get("type") == "qcow2"
    (volume_xml,) = [x for n, x in world.conn.list_volumes(pool_name(HOST)) if n == f"epa-{server['id']}.qcow2"]
    volume = etree.fromstring(volume_xml.encode())
    assert volume.findtext("backingStore/path") == str(cached)
    assert volume.findtext("capacity") == str(3 * 1024**3)
    assert seed_disk.find("readonly") is not None
    seed = read_seed(Path(seed_disk.find("source").get("file")))
    assert seed[".label"] == b"cidata"
    meta = json.loads(seed["meta-data"])
    assert meta == {"instance-id": server["id"], "local-hostname": "vm-1", "public-keys": [KEY]}
    assert b"EPA-MARK" in seed["user-data"]
    assert json.loads(seed["network-config"]) == {"version": 2, "ethernets": {}}
    assert xml.find("devices/serial").get("type") == "file"
    assert Path(xml.find("devices/serial/source").get("path")).is_file()
    # Deleting the server takes its disk, seed and console log with it; the cached image stays.
    world.admin.delete_server(server["id"])
    world.reconciler().reconcile_once()
    assert world.admin.get_server(server["id"])["status"] == "deleted"
    assert _volumes(world) == []
    assert sorted(p.name for p in world.state.iterdir()) == ["disks", "images"]
    assert cached.is_file()


def test_the_flavors_disk_gb_sizes_the_overlay_and_one_too_small_fails_the_server(world: World, tmp_path: Path) -> None:
    world.upload("deb", images.qcow2(tmp_path / "d.qcow2", "3G"))
    world.admin.create_flavor({"name": "big", "vcpus": 1, "memory_mb": 256, "disk_gb": 5})
    world.admin.create_flavor({"name": "tight", "vcpus": 1, "memory_mb": 256, "disk_gb": 2})
    big = world.admin.create_server("vm-big", "big", (), boot={"image": "deb"})
    tight = world.admin.create_server("vm-tight", "tight", (), boot={"image": "deb"})
    world.reconciler().reconcile_once()
    assert world.admin.get_server(big["id"])["status"] == "active"
    (volume_xml,) = [x for n, x in world.conn.list_volumes(pool_name(HOST)) if n == f"epa-{big['id']}.qcow2"]
    assert etree.fromstring(volume_xml.encode()).findtext("capacity") == str(5 * 1024**3)
    failed = world.admin.get_server(tight["id"])
    assert failed["status"] == "error"
    reason = failed["status_reason"]
    assert "flavor tight: disk_gb 2 GiB" in reason and f"image deb ({3 * 1024**3} bytes" in reason
    # Refused before anything was made for it: no overlay, no seed, no console log, no domain.
    assert _volumes(world) == [f"epa-{big['id']}.qcow2"]
    assert not list(world.state.glob(f"{tight['id']}.*"))
    assert len(world.conn.list_domains()) == 1


def test_network_config_matches_each_port_by_its_mac() -> None:
    from epa.agent.seed import seed_files

    files = seed_files({"id": "x", "name": "n", "ports": [{"mac": "fa:16:3e:00:00:01"}, {"mac": "52:54:00:aa:bb:cc"}]})
    config = json.loads(files["network-config"])
    assert config["ethernets"]["port1"]["match"] == {"macaddress": "52:54:00:aa:bb:cc"}
    assert config["ethernets"]["port0"]["set-name"] == "port0"


class _Corrupting:
    """The API client, with each download's bytes damaged on the way (as a broken proxy would)."""

    def __init__(self, real: ApiClient) -> None:
        self.real = real

    def download_image_part(self, name: str, part: str, out: Any) -> tuple[int, str]:
        import hashlib
        import io

        buffer = io.BytesIO()
        self.real.download_image_part(name, part, buffer)
        data = bytearray(buffer.getvalue())
        data[100] ^= 0xFF
        out.write(bytes(data))
        return len(data), hashlib.sha256(data).hexdigest()


def test_a_checksum_mismatch_fails_the_server_and_keeps_nothing(world: World, tmp_path: Path) -> None:
    world.upload("deb", images.qcow2(tmp_path / "d.qcow2"))
    server = world.create("vm-1", "deb")
    reconciler = world.reconciler()
    assert reconciler.boot is not None
    reconciler.boot.cache.fetcher = _Corrupting(world.agent)
    reconciler.reconcile_once()
    failed = world.admin.get_server(server["id"])
    assert failed["status"] == "error"
    assert "sha256" in failed["status_reason"] and "thrown away" in failed["status_reason"]
    assert [p.name for p in (world.state / "images").iterdir()] == []
    assert world.conn.list_domains() == []


def test_a_full_cache_is_an_error_on_the_server(world: World, tmp_path: Path) -> None:
    first = images.raw(tmp_path / "a.raw", 3 * 1024 * 1024)
    second = images.raw(tmp_path / "b.raw", 2 * 1024 * 1024 + 512)
    world.upload("a", first)
    world.upload("b", second)
    one = world.create("vm-1", "a")
    world.reconciler(cache_bytes=4 * 1024 * 1024).reconcile_once()
    assert world.admin.get_server(one["id"])["status"] == "active"
    two = world.create("vm-2", "b")
    world.reconciler(cache_bytes=4 * 1024 * 1024).reconcile_once()
    failed = world.admin.get_server(two["id"])
    assert failed["status"] == "error" and "image cache is full" in failed["status_reason"]
    # Once vm-1 is gone, its image is unused: it is evicted to make room.
    world.admin.delete_server(one["id"])
    world.reconciler(cache_bytes=4 * 1024 * 1024).reconcile_once()
    three = world.create("vm-3", "b")
    world.reconciler(cache_bytes=4 * 1024 * 1024).reconcile_once()
    assert world.admin.get_server(three["id"])["status"] == "active"
    assert [p.name for p in (world.state / "images").iterdir()] == [three["image"]["parts"][0]["sha256"]]
    # The eviction is reported too: the host holds only b's part now.
    held = world.admin.get_host(HOST)["images"]["parts"]
    assert [(p["sha256"], p["images"]) for p in held] == [(three["image"]["parts"][0]["sha256"], ["b"])]


def test_a_base_that_vanished_is_the_reason_on_the_server(world: World, tmp_path: Path) -> None:
    world.upload("deb", images.qcow2(tmp_path / "d.qcow2"))
    server = world.create("vm-1", "deb")
    world.reconciler().reconcile_once()
    assert world.admin.get_server(server["id"])["status"] == "active"
    # A host crash (or an operator) took the cached base and the domain with it.
    sha = server["image"]["parts"][0]["sha256"]
    name = next(n for n, _, _ in world.conn.list_domains())
    world.conn.destroy_domain(name)
    world.conn.undefine_domain(name)
    (world.state / "images" / sha).unlink()
    reconciler = world.reconciler()
    assert reconciler.boot is not None
    reconciler.boot.cache.fetcher = _Gone()
    reconciler.reconcile_once()
    failed = world.admin.get_server(server["id"])
    assert failed["status"] == "error"
    assert "image deb disk: cannot fetch it from the API: image 'deb' does not exist" in failed["status_reason"]
    assert _volumes(world) == []


class _Gone:
    def download_image_part(self, name: str, part: str, out: Any) -> tuple[int, str]:
        from epa.errors import NotFound

        raise NotFound(f"image {name!r} does not exist")


def test_what_a_crash_left_behind_is_collected(world: World, tmp_path: Path) -> None:
    world.upload("deb", images.qcow2(tmp_path / "d.qcow2"))
    server = world.create("vm-1", "deb")
    world.reconciler().reconcile_once()
    # The server is forced away while its agent is down: its domain, disk and files stay behind.
    world.admin.delete_server(server["id"], force=True)
    summary = world.reconciler().reconcile_once()
    assert any("orphan disk" in a for a in summary.actions)
    assert _volumes(world) == [] and world.conn.list_domains() == []
    assert not list(world.state.glob(f"{server['id']}.*"))


def test_the_console_reaches_the_api_escaped(world: World, tmp_path: Path) -> None:
    world.upload("deb", images.qcow2(tmp_path / "d.qcow2"))
    server = world.create("vm-1", "deb")
    reconciler = world.reconciler()
    reconciler.reconcile_once()
    log = world.state / f"{server['id']}.console.log"
    # What a guest may print: CR LF line ends, a terminal escape, a NUL, invalid UTF-8, non-ASCII text.
    log.write_bytes(b"Linux version 6.1\r\n\x1b]0;owned\x07hostname vm-1\r\nnul\x00 bad\xff caf\xc3\xa9\r\n")
    reconciler.reconcile_once()
    lines = world.admin.get_console(server["id"], 2)["lines"]
    assert lines == ["\\x1b]0;owned\\x07hostname vm-1", "nul\\x00 bad\\xff café"]
    assert world.admin.get_console(server["id"], 10)["lines"][0] == "Linux version 6.1"
    # Unchanged: nothing is sent again.
    assert not any("console" in a for a in reconciler.reconcile_once().actions)


def test_console_cli_follow_shows_only_new_lines() -> None:
    from epa.cli.server import new_lines

    assert new_lines([], ["a", "b"]) == ["a", "b"]
    assert new_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert new_lines(["a", "b", "c"], ["c", "d"]) == ["d"]
    assert new_lines(["a"], ["x", "y"]) == ["x", "y"]
