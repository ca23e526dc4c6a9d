"""Overlays through a real libvirt storage driver: a private libvirtd (a session daemon, as ``nobody``)
owns the directory pool, and libvirt's own storage backend runs qemu-img to make each qcow2 overlay on
its base; the file on disk is checked with qemu-img's own reading of it. Orphans are found by listing
the pool, and deleting a volume removes its file."""

from __future__ import annotations

import json
import os
import subprocess

from epa.agent.boot import root_disk_capacity
from epa.libvirt_client import open_connection
from epa.virt.disks import Disks, pool_name
from support import images
from support.hypervisor import libvirt_daemon

SERVER = "0b7d1c2e-4a6f-4e8e-9a52-3f5d6c7b8a90"
OTHER = "1c8e2d3f-5b70-4f9f-8b63-4a6e7d8c9ba1"


def test_an_overlay_is_made_by_libvirt_on_its_base_and_deleted_with_it() -> None:
    with libvirt_daemon() as daemon:
        where = daemon.log.parent
        uri = daemon.uri.replace("test+unix:///default", "qemu+unix:///session")
        base = images.qcow2(where / "base.qcow2", "256M")
        os.chmod(base, 0o644)
        pool_dir = where / "disks"
        with open_connection(uri) as conn:
            disks = Disks(conn, pool_name("h1"), str(pool_dir))
            path = disks.ensure(SERVER, str(base), "qcow2", 1024**3, exists=True)
            assert path == str(pool_dir / f"epa-{SERVER}.qcow2")
            info = json.loads(
                subprocess.run(
                    [images.qemu_img(), "info", "--output=json", "-U", path], capture_output=True, check=True
                ).stdout
            )
            assert info["format"] == "qcow2" and info["virtual-size"] == 1024**3
            assert info["backing-filename"] == str(base) and info.get("backing-filename-format") == "qcow2"
            # Asking again finds it; another server's overlay is an orphan once its server is gone.
            assert disks.ensure(SERVER, str(base), "qcow2", 1024**3, exists=True) == path
            disks.ensure(OTHER, str(base), "qcow2", 1024**3, exists=True)
            assert [v.server_id for v in disks.orphans({SERVER})] == [OTHER]
            disks.delete(OTHER)
            disks.delete(SERVER)
            disks.delete(SERVER)  # already gone: fine
            assert not list(pool_dir.glob("epa-*"))


def test_a_flavors_disk_gb_is_the_real_size_of_the_overlay() -> None:
    with libvirt_daemon() as daemon:
        where = daemon.log.parent
        uri = daemon.uri.replace("test+unix:///default", "qemu+unix:///session")
        base = images.qcow2(where / "base.qcow2", "256M")
        os.chmod(base, 0o644)
        server = {
            "flavor": {"name": "d2", "disk_gb": 2},
            "image": {"name": "base", "parts": [{"name": "disk", "virtual_size": 256 * 1024**2}]},
        }
        with open_connection(uri) as conn:
            disks = Disks(conn, pool_name("h1"), str(where / "disks"))
            path = disks.ensure(SERVER, str(base), "qcow2", root_disk_capacity(server), exists=True)
            info = json.loads(
                subprocess.run(
                    [images.qemu_img(), "info", "--output=json", "-U", path], capture_output=True, check=True
                ).stdout
            )
            assert info["virtual-size"] == 2 * 1024**3 and info["backing-filename"] == str(base)
            disks.delete(SERVER)
