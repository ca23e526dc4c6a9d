"""Story: an operator lists the devices of several hosts, filters them and pages through them."""

from __future__ import annotations

from pathlib import Path

from support.api_story import Api
from support.reports import report_body


def test_listing_filters_and_pages(api: Api, nfv_sysfs: Path, no_numa_sysfs: Path) -> None:
    for name, root in (("nfv-1", nfv_sysfs), ("edge-1", no_numa_sysfs)):
        token = api.call("POST", "/v1/hosts", json={"name": name}, expect=201)["agent_token"]
        api.call("PUT", f"/v1/hosts/{name}/inventory", token=token, json=report_body(root, 0))

    everything = api.call("GET", "/v1/devices?limit=10000")
    assert everything["next_marker"] is None
    assert len(everything["devices"]) == 86 + 10
    keys = [(d["host"], d["address"]) for d in everything["devices"]]
    assert keys == sorted(keys)

    pages, marker = [], None
    while True:
        url = "/v1/devices?limit=7" + (f"&marker={marker}" if marker else "")
        page = api.call("GET", url)
        pages.extend((d["host"], d["address"]) for d in page["devices"])
        marker = page["next_marker"]
        if marker is None:
            break
    assert pages == keys

    vfs = api.call("GET", "/v1/devices?host=nfv-1&dev_type=type-VF&limit=10000")["devices"]
    assert len(vfs) == 68
    assert {d["dev_type"] for d in vfs} == {"type-VF"}
    assignable = api.call("GET", "/v1/devices?assignable=true&limit=10000")["devices"]
    assert {d["host"] for d in assignable} == {"nfv-1", "edge-1"}  # edge-1's X710 VFs match 8086:154c
    assert all(d["assignable"] for d in assignable)
    assert api.call("GET", "/v1/devices?status=claimed")["devices"] == []

    one = api.call("GET", "/v1/hosts/nfv-1/devices/0000:3D:01.0")
    assert (one["address"], one["parent_addr"], one["status"]) == (
        "0000:3d:01.0",
        "0000:3d:00.0",
        "available",
    )
    api.error("GET", "/v1/hosts/nfv-1/devices/0000:3d:1f.0", expect=404, code="not_found")
    message = api.error("GET", "/v1/hosts/nfv-1/devices/3d-01", expect=400, code="invalid_pci_address")
    assert "'3d-01'" in message
    message = api.error("GET", "/v1/devices?status=lost", expect=400, code="invalid_input")
    assert "status" in message and "'lost'" in message
    api.error("GET", "/v1/devices?limit=0", expect=400, code="invalid_input")
    api.error("GET", "/v1/devices?marker=garbage", expect=400, code="invalid_input")
