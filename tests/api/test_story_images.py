"""Story: images through the API - create, upload streamed, the format told from the content, list,
show, refuse what EPA will not boot (with nothing left behind), and deletion refused while in use."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from epa.inventory import Database
from epa.inventory.images import CHUNK_BYTES
from epa.inventory.schema import ImageChunkRow
from support import images
from support.api_story import Api


def _upload(api: Api, path: str, data: bytes | Iterator[bytes], *, expect: int = 200, **headers: str) -> dict:
    resp = api.client.put(path, content=data, headers={"Authorization": f"Bearer {api.admin}", **headers})
    assert resp.status_code == expect, resp.text
    return resp.json()


def _chunks(db: Database) -> int:
    with db.transaction(readonly=True) as session:
        return int(session.execute(select(func.count()).select_from(ImageChunkRow)).scalar_one())


def test_qcow2_upload_probe_download_and_delete(api: Api, db: Database, tmp_path: Path) -> None:
    path = images.qcow2(tmp_path / "a.qcow2", "1G")
    data = path.read_bytes()
    created = api.call("POST", "/v1/images", json={"name": "cirros"}, expect=201)
    assert created["status"] == "queued" and created["missing_parts"] == ["disk"]
    out = _upload(api, "/v1/images/cirros/disk", data)
    assert out["status"] == "active" and out["format"] == "qcow2"
    assert out["virtual_size"] == 1024**3
    (part,) = out["parts"]
    assert part["sha256"] == hashlib.sha256(data).hexdigest() and part["size"] == len(data)
    assert api.call("GET", "/v1/images")["images"][0]["name"] == "cirros"
    resp = api.client.get("/v1/images/cirros/disk", headers={"Authorization": f"Bearer {api.admin}"})
    assert resp.status_code == 200 and resp.content == data
    assert resp.headers["x-image-sha256"] == part["sha256"]
    # An image never changes once whole: agents cache it by checksum.
    api.error("PUT", "/v1/images/cirros/disk", expect=409, code="conflict")
    api.call("DELETE", "/v1/images/cirros", expect=204)
    api.error("GET", "/v1/images/cirros", expect=404, code="not_found")
    assert _chunks(db) == 0


def test_raw_image_streamed_in_many_chunks(api: Api, db: Database) -> None:
    size = 2 * CHUNK_BYTES + 4096
    pieces = [bytes([i % 251]) * 65536 for i in range(size // 65536)] + [b"\x07" * (size % 65536)]
    api.call("POST", "/v1/images", json={"name": "big"}, expect=201)
    out = _upload(api, "/v1/images/big/disk", iter(pieces))
    assert out["format"] == "raw" and out["virtual_size"] == size
    assert _chunks(db) == 3
    resp = api.client.get("/v1/images/big/disk", headers={"Authorization": f"Bearer {api.admin}"})
    assert (
        hashlib.sha256(resp.content).hexdigest()
        == out["parts"][0]["sha256"]
        == hashlib.sha256(b"".join(pieces)).hexdigest()
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"hello world\n", "too small"),
        (b"\0" * (64 * 1024 + 1), "whole number of 512-byte sectors"),
        (b"\0" * 0x8001 + b"CD001" + b"\0" * 40000, "ISO 9660"),
        (images.qcow2_header(backing=b"/etc/shadow"), "backing file"),
        (images.qcow2_header(incompatible=1 << 2), "external file"),
        (images.qcow2_header(version=1), "version (1)"),
        (b"KDMV" + b"\0" * 70000, "VMDK"),
        (b"", "empty"),
    ],
)
def test_what_is_not_a_bootable_disk_is_refused_and_leaves_nothing(
    api: Api, db: Database, content: bytes, words: str
) -> None:
    api.call("POST", "/v1/images", json={"name": "bad"}, expect=201)
    message = api.error("PUT", "/v1/images/bad/disk", expect=400, code="invalid_image") if not content else None
    if content:
        resp = api.client.put("/v1/images/bad/disk", content=content, headers={"Authorization": f"Bearer {api.admin}"})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "invalid_image"
        message = resp.json()["error"]["message"]
    assert message is not None and words in message and "image bad disk" in message
    assert api.call("GET", "/v1/images/bad")["status"] == "queued"
    assert _chunks(db) == 0


def test_qcow2_made_by_qemu_img_with_a_backing_file_is_refused(api: Api, tmp_path: Path) -> None:
    base = images.raw(tmp_path / "base.raw")
    overlay = images.qcow2(tmp_path / "over.qcow2", "1M", backing=base)
    api.call("POST", "/v1/images", json={"name": "over"}, expect=201)
    resp = api.client.put(
        "/v1/images/over/disk", content=overlay.read_bytes(), headers={"Authorization": f"Bearer {api.admin}"}
    )
    assert resp.status_code == 400 and "backing file" in resp.json()["error"]["message"]


def test_size_limit_checksum_and_auth_before_body(db: Database) -> None:
    from fastapi.testclient import TestClient

    from epa.api.app import create_app
    from epa.inventory.tokens import ensure_admin_token

    token = ensure_admin_token(db)
    with TestClient(create_app(db, max_image_bytes=200_000), raise_server_exceptions=False) as client:
        api = Api(client, token)
        api.call("POST", "/v1/images", json={"name": "x"}, expect=201)
        body = b"\0" * 262144
        resp = client.put("/v1/images/x/disk", content=body, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"

        def endless() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
            # (bounded: the test client collects a streamed body before it sends it)
            for _ in range(8):
                yield b"\0" * 65536

        resp = client.put("/v1/images/x/disk", content=endless(), headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 413
        resp = client.put("/v1/images/x/disk", content=endless())
        assert resp.status_code == 401
        resp = client.put(
            "/v1/images/x/disk",
            content=b"\0" * 131072,
            headers={"Authorization": f"Bearer {token}", "X-Image-Sha256": "0" * 64},
        )
        assert resp.status_code == 400 and "does not match" in resp.json()["error"]["message"]
        assert _chunks(db) == 0
        assert api.call("GET", "/v1/images/x")["status"] == "queued"


def test_kernel_image_needs_both_parts_and_servers_need_an_active_image(api: Api) -> None:
    api.call("POST", "/v1/images", json={"name": "k", "kind": "kernel", "cmdline": "console=ttyS0"}, expect=201)
    kernel = b"\0" * 0x202 + b"HdrS" + b"\0" * 5000
    out = _upload(api, "/v1/images/k/kernel", kernel)
    assert out["status"] == "queued" and out["missing_parts"] == ["initrd"]
    bad = api.client.put(
        "/v1/images/k/initrd", content=b"not an initrd", headers={"Authorization": f"Bearer {api.admin}"}
    )
    assert bad.status_code == 400 and "not an initrd" in bad.json()["error"]["message"]
    api.error("PUT", "/v1/images/k/disk", expect=400, code="invalid_image")
    api.call("POST", "/v1/flavors", json={"name": "tiny", "vcpus": 1, "memory_mb": 64}, expect=201)
    message = api.error(
        "POST", "/v1/servers", json={"name": "s", "flavor": "tiny", "image": "k"}, expect=400, code="invalid_image"
    )
    assert "not active yet" in message and "initrd" in message
    out = _upload(api, "/v1/images/k/initrd", b"070701" + b"0" * 200)
    assert out["status"] == "active" and out["cmdline"] == "console=ttyS0"


def test_image_in_use_cannot_be_deleted_until_its_server_is(api: Api, tmp_path: Path) -> None:
    agent = api.call("POST", "/v1/hosts", json={"name": "h1"}, expect=201)["agent_token"]
    other = api.call("POST", "/v1/hosts", json={"name": "h2"}, expect=201)["agent_token"]
    cells = [{"node": 0, "socket": 0, "cpus": [0, 1], "memory_mb": 4096}]
    api.call("PUT", "/v1/hosts/h1/inventory", token=agent, json={"generation": 0, "numa_cells": cells, "devices": []})
    api.call("POST", "/v1/flavors", json={"name": "tiny", "vcpus": 1, "memory_mb": 64}, expect=201)
    api.call("POST", "/v1/images", json={"name": "img"}, expect=201)
    _upload(api, "/v1/images/img/disk", images.qcow2(tmp_path / "i.qcow2").read_bytes())
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host"
    server = api.call(
        "POST",
        "/v1/servers",
        json={"name": "vm", "flavor": "tiny", "image": "img", "ssh_keys": [key], "user_data": "#cloud-config\n"},
        expect=201,
    )
    assert server["host"] == "h1" and server["image"]["name"] == "img" and server["ssh_keys"] == [key]
    assert api.call("GET", "/v1/images/img")["servers"] == 1
    message = api.error("DELETE", "/v1/images/img", expect=409, code="conflict")
    assert "vm" in message
    # The agent of the server's host may read the image; another host's agent may not.
    assert api.client.get("/v1/images/img/disk", headers={"Authorization": f"Bearer {agent}"}).status_code == 200
    assert api.client.get("/v1/images/img/disk", headers={"Authorization": f"Bearer {other}"}).status_code == 403
    api.call("DELETE", f"/v1/servers/{server['id']}?force=true", expect=202)
    api.call("DELETE", "/v1/images/img", expect=204)
    # The deleted server keeps its snapshot of what it booted.
    gone = api.call("GET", f"/v1/servers/{server['id']}")
    assert gone["status"] == "deleted" and gone["image"]["name"] == "img"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"ssh_keys": ["not a key"]}, "ssh_keys[0]"),
        ({"user_data": "x" * 70000}, "user_data"),
        ({"image": "../etc"}, "image"),
        ({"image": "nope"}, "image 'nope' does not exist"),
    ],
)
def test_server_boot_input_is_checked(api: Api, body: dict, words: str) -> None:
    api.call("POST", "/v1/flavors", json={"name": "tiny", "vcpus": 1, "memory_mb": 64}, expect=201)
    if "image" not in body:
        api.call("POST", "/v1/images", json={"name": "i"}, expect=201)
        api.client.put("/v1/images/i/disk", content=b"\0" * 65536, headers={"Authorization": f"Bearer {api.admin}"})
        body = {"image": "i", **body}
    resp = api.client.post(
        "/v1/servers", json={"name": "s", "flavor": "tiny", **body}, headers={"Authorization": f"Bearer {api.admin}"}
    )
    assert resp.status_code in (400, 404), resp.text
    assert words in resp.json()["error"]["message"]
    assert api.call("GET", "/v1/servers")["servers"] == []


def test_agents_report_their_image_cache_and_the_scheduler_prefers_holders(api: Api, tmp_path: Path) -> None:
    cells = [{"node": 0, "socket": 0, "cpus": [0, 1], "memory_mb": 4096}]
    tokens = {}
    for host in ("h1", "h2"):
        tokens[host] = api.call("POST", "/v1/hosts", json={"name": host}, expect=201)["agent_token"]
        inventory = {"generation": 0, "numa_cells": cells, "devices": []}
        api.call("PUT", f"/v1/hosts/{host}/inventory", token=tokens[host], json=inventory)
    api.call("POST", "/v1/flavors", json={"name": "tiny", "vcpus": 1, "memory_mb": 64}, expect=201)
    api.call("POST", "/v1/images", json={"name": "img"}, expect=201)
    part = _upload(api, "/v1/images/img/disk", images.qcow2(tmp_path / "i.qcow2").read_bytes())["parts"][0]
    assert api.call("GET", "/v1/hosts/h2")["images"] is None
    # With nothing cached anywhere the two equal hosts tie, and the tie goes to the name: h1.
    why = api.call("POST", "/v1/scheduler/explain", json={"flavor": "tiny", "image": "img"})
    assert [(c["host"], c["holds_image"]) for c in why["candidates"]] == [("h1", False), ("h2", False)]
    tie = why["candidates"][0]["score"]
    assert why["candidates"][1]["score"] == tie
    # h2's agent says it holds the image's part (and one part of no image): h2 now ranks first.
    other = "ab" * 32
    body = {"parts": [{"sha256": part["sha256"], "size": part["size"]}, {"sha256": other, "size": 65536}]}
    host = api.call("PUT", "/v1/hosts/h2/images", token=tokens["h2"], json=body)
    assert [(p["sha256"], p["images"]) for p in host["images"]["parts"]] == sorted(
        [(part["sha256"], ["img"]), (other, [])]
    )
    assert api.call("GET", "/v1/hosts/h2")["images"]["parts"] == host["images"]["parts"]
    why = api.call("POST", "/v1/scheduler/explain", json={"flavor": "tiny", "image": "img"})
    assert [(c["host"], c["holds_image"]) for c in why["candidates"]] == [("h2", True), ("h1", False)]
    assert why["candidates"][0]["score"] > why["candidates"][1]["score"] == tie
    # Without an image the cache is no term at all.
    plain = api.call("POST", "/v1/scheduler/explain", json={"flavor": "tiny"})
    assert [(c["host"], c["holds_image"]) for c in plain["candidates"]] == [("h1", False), ("h2", False)]
    server = api.call("POST", "/v1/servers", json={"name": "vm", "flavor": "tiny", "image": "img"}, expect=201)
    assert server["host"] == "h2"
    # One host's agent may not speak for another's cache; bad bodies name the field.
    api.error("PUT", "/v1/hosts/h1/images", token=tokens["h2"], json={"parts": []}, expect=403, code="forbidden")
    for bad, words in (
        ({"parts": [{"sha256": "XYZ", "size": 1}]}, "parts[0].sha256 ('XYZ')"),
        ({"parts": [{"sha256": other, "size": -1}]}, "parts[0].size (-1)"),
        ({}, "parts"),
    ):
        message = api.error(
            "PUT", "/v1/hosts/h2/images", token=tokens["h2"], json=bad, expect=400, code="invalid_input"
        )
        assert words in message
    # An emptied cache is said too; the preference goes with it.
    api.call("PUT", "/v1/hosts/h2/images", token=tokens["h2"], json={"parts": []})
    why = api.call("POST", "/v1/scheduler/explain", json={"flavor": "tiny", "image": "img"})
    assert all(not c["holds_image"] for c in why["candidates"])


def test_a_flavor_names_the_image_its_servers_boot_unless_the_create_names_another(api: Api, tmp_path: Path) -> None:
    agent = api.call("POST", "/v1/hosts", json={"name": "h1"}, expect=201)["agent_token"]
    cells = [{"node": 0, "socket": 0, "cpus": [0, 1, 2, 3], "memory_mb": 4096}]
    api.call("PUT", "/v1/hosts/h1/inventory", token=agent, json={"generation": 0, "numa_cells": cells, "devices": []})
    for name in ("base", "other"):
        api.call("POST", "/v1/images", json={"name": name}, expect=201)
        _upload(api, f"/v1/images/{name}/disk", images.qcow2(tmp_path / f"{name}.qcow2").read_bytes())
    flavor = api.call(
        "POST", "/v1/flavors", json={"name": "vm", "vcpus": 1, "memory_mb": 64, "image": "base"}, expect=201
    )
    assert flavor["image"] == "base" and api.call("GET", "/v1/flavors/vm")["image"] == "base"
    by_flavor = api.call(
        "POST", "/v1/servers", json={"name": "a", "flavor": "vm", "user_data": "#cloud-config\n"}, expect=201
    )
    named = api.call("POST", "/v1/servers", json={"name": "b", "flavor": "vm", "image": "other"}, expect=201)
    assert by_flavor["image"]["name"] == "base" and named["image"]["name"] == "other"
    # A flavor's image is a name like any other, and one that is gone is said at create, naming it.
    message = api.error(
        "POST",
        "/v1/flavors",
        json={"name": "bad", "vcpus": 1, "memory_mb": 64, "image": "../x"},
        expect=400,
        code="invalid_flavor",
    )
    assert "image" in message
    api.call("POST", "/v1/flavors", json={"name": "gone", "vcpus": 1, "memory_mb": 64, "image": "nope"}, expect=201)
    message = api.error("POST", "/v1/servers", json={"name": "c", "flavor": "gone"}, expect=404, code="not_found")
    assert "nope" in message
