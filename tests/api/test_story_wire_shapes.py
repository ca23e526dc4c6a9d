"""Story: every resource's answer keeps the exact shape it had before the answers came from wire models -
its keys, their order, an absent key staying absent and the form of its times - since the dashboard, the CLI,
the demo and the lab read it."""

from __future__ import annotations

from pathlib import Path

from support.api_story import Api
from support.reports import report_body

PCI = ["address", "vendor_id", "product_id", "class_code", "subsystem_vendor_id", "subsystem_product_id",
       "vendor_name", "product_name", "dev_type", "parent_addr", "numa_node", "iommu_group", "driver", "netdev",
       "netdevs", "sriov_totalvfs", "sriov_numvfs", "vf_addrs", "pci_root", "pcie_path", "switchdev"]  # fmt: skip
HOST = ["hypervisor", "images", "name", "enabled", "generation", "last_report_at", "numa_cells", "device_counts",
        "device_total"]  # fmt: skip
UTC = "+00:00"  # times are isoformat() in UTC, not pydantic's "Z"


def test_host_device_and_report_answers_keep_their_keys_order_and_times(api: Api, nfv_sysfs: Path) -> None:
    created = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)
    assert list(created) == ["host", "agent_token"] and list(created["host"]) == HOST
    token = created["agent_token"]
    outcome = api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, generation=0))
    assert list(outcome) == ["generation", "added", "updated", "removed", "vanished_in_use", "unchanged"]

    hypervisor = {"uri": "qemu:///system", "reachable": True, "domain_type": "qemu"}
    api.call("PUT", "/v1/hosts/nfv-1/hypervisor", token=token, json=hypervisor)
    part = {"sha256": "ab" * 32, "size": 65536}
    host = api.call("PUT", "/v1/hosts/nfv-1/images", token=token, json={"parts": [part]})
    assert list(host) == HOST and host["last_report_at"].endswith(UTC)
    assert list(host["numa_cells"][0]) == ["node", "socket", "cpus", "memory_mb"]
    # The agent's own order on every backend (PostgreSQL's JSONB gave its own order before the model).
    assert list(host["hypervisor"]) == ["uri", "reachable", "reason", "domain_type", "warnings", "reported_at"]
    assert host["hypervisor"]["reported_at"].endswith(UTC)
    assert host["images"] == {"parts": [{**part, "images": []}], "reported_at": host["images"]["reported_at"]}
    assert host["images"]["reported_at"].endswith(UTC)
    assert api.call("GET", "/v1/hosts")["hosts"] == [host]

    devices = api.call("GET", "/v1/devices?host=nfv-1&limit=2")
    assert list(devices) == ["devices", "next_marker"] and devices["next_marker"] is not None
    first = devices["devices"][0]
    assert list(first) == [*PCI, "host", "assignable", "tags", "status", "owner", "vanished"]
    assert api.call("GET", f"/v1/hosts/nfv-1/devices/{first['address']}") == first


def test_alias_flavor_and_image_answers_keep_their_keys_and_order(api: Api) -> None:
    alias = api.call("POST", "/v1/aliases", json={"name": "qat", "vendor_id": "8086", "product_id": "37c9"}, expect=201)
    # An alternative's absent keys stay absent (no nulls): its entry as Nova writes it.
    assert alias == {
        "name": "qat",
        "numa_policy": "legacy",
        "device_type": None,
        "specs": [{"name": "qat", "numa_policy": "legacy", "vendor_id": "8086", "product_id": "37c9"}],
    }
    flavor = api.call(
        "POST",
        "/v1/flavors",
        json={"name": "f", "vcpus": 1, "memory_mb": 512, "pci_passthrough:alias": "qat:1"},
        expect=201,
    )
    assert flavor == {
        "name": "f",
        "vcpus": 1,
        "memory_mb": 512,
        "pci_passthrough:alias": "qat:1",
        "pci_requests": [{"alias": "qat", "count": 1}],
        "numa_policy": None,
        "numa_nodes": 1,
        "disk_gb": None,
        "image": None,
        "pci_group": "",
    }
    assert list(flavor) == list(api.call("GET", "/v1/flavors/f"))
    image = api.call("POST", "/v1/images", json={"name": "cirros"}, expect=201)
    assert list(image) == ["id", "name", "kind", "cmdline", "parts", "status", "missing_parts", "format",
                           "virtual_size", "servers", "created_at"]  # fmt: skip
    assert image["created_at"].endswith(UTC)
    assert api.call("GET", "/v1/images") == {"images": [image]}
