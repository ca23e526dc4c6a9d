"""Story: bodies are taken as they are typed - no "3" for 3, no true for 1 - every name follows the host-name
rule, every list and text field has a cap, and an error quotes at most a bounded prefix of a bad value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from epa.domain.names import SHOWN_MAX
from support.api_story import Api
from support.reports import report_body

# An error message names the field, quotes a prefix of the value and says what is wrong: a few hundred
# characters, whatever the value.
MESSAGE_MAX = 400


@pytest.fixture
def agent(api: Api) -> str:
    token: str = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    return token


@pytest.mark.parametrize(
    ("field", "value"),
    [("numa_node", "3"), ("numa_node", True), ("iommu_group", "7"), ("sriov_totalvfs", 1.0), ("assignable", 1)],
)
def test_a_device_field_of_the_wrong_type_is_refused_not_coerced(
    api: Api, agent: str, nfv_sysfs: Path, field: str, value: Any
) -> None:
    report = report_body(nfv_sysfs, 0)
    report["devices"][2][field] = value
    message = api.error("PUT", "/v1/hosts/nfv-1/inventory", token=agent, json=report, expect=400, code="invalid_input")
    assert message.startswith(f"devices[2].{field} ({value!r})"), message


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("PATCH", "/v1/hosts/nfv-1", {"enabled": "false"}, "enabled"),
        ("PATCH", "/v1/hosts/nfv-1", {"enabled": 0}, "enabled"),
        ("POST", "/v1/servers", {"name": "s", "flavor": "f", "ports": [{"physnet": "p", "vlan": "100"}]}, "vlan"),
        ("POST", "/v1/servers", {"name": "s", "flavor": "f", "ports": [{"physnet": "p", "trusted": 1}]}, "trusted"),
        ("POST", "/v1/scheduler/explain", {"flavor": "f", "limit": "3"}, "limit"),
        ("PUT", "/v1/hosts/nfv-1/inventory", {"generation": "0"}, "generation"),
        (
            "PUT",
            "/v1/hosts/nfv-1/inventory",
            {"generation": 0, "numa_cells": [{"node": 0, "memory_mb": "1"}]},
            "memory_mb",
        ),
    ],
)
def test_other_bodies_are_strict_too(api: Api, agent: str, method: str, url: str, body: Any, field: str) -> None:
    message = api.error(method, url, json=body, expect=400, code="invalid_input")
    assert field in message, message


def test_the_cli_and_agent_shapes_stay_valid(api: Api, agent: str, nfv_sysfs: Path) -> None:
    """What the agent sends (PciDevice.to_json plus the device_spec verdict) and what the CLI sends
    (Port.to_json without the nulls) are typed already: strict changes nothing for them."""
    api.call("PUT", "/v1/hosts/nfv-1/inventory", token=agent, json=report_body(nfv_sysfs, 0))
    api.call("POST", "/v1/flavors", json={"name": "f", "vcpus": 1, "memory_mb": 64}, expect=201)
    port = {"physnet": "physnet1", "vnic_type": "direct", "trusted": False, "vlan": 100}
    api.call("POST", "/v1/scheduler/explain", json={"flavor": "f", "ports": [port], "limit": 3})


@pytest.mark.parametrize("name", ["a/b", "a b", "-a", "a" * 64, "ä", ""])
def test_alias_and_flavor_names_follow_the_host_name_rule(api: Api, name: str) -> None:
    message = api.error(
        "POST", "/v1/aliases", json={"name": name, "vendor_id": "8086"}, expect=400, code="invalid_alias"
    )
    assert "property name" in message and "[A-Za-z0-9._-]" in message, message
    message = api.error(
        "POST", "/v1/flavors", json={"name": name, "vcpus": 1, "memory_mb": 64}, expect=400, code="invalid_flavor"
    )
    assert "[A-Za-z0-9._-]" in message, message
    api.error("POST", "/v1/servers", json={"name": "s", "flavor": name}, expect=400, code="invalid_input")


MEGABYTE = "x" * (60 * 1024)  # as large as the default body cap lets a field be


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/v1/aliases", {"name": MEGABYTE, "vendor_id": "8086"}),
        ("POST", "/v1/aliases", {"name": "a", "vendor_id": MEGABYTE}),
        ("POST", "/v1/aliases", {"name": "a", "rack": MEGABYTE}),
        ("POST", "/v1/aliases", {"name": "a", MEGABYTE: "v"}),
        ("POST", "/v1/flavors", {"name": MEGABYTE, "vcpus": 1, "memory_mb": 64}),
        ("POST", "/v1/flavors", {"name": "f", "vcpus": MEGABYTE, "memory_mb": 64}),
        ("POST", "/v1/flavors", {"name": "f", "vcpus": 1, "memory_mb": 64, "pci_passthrough:alias": MEGABYTE}),
        ("POST", "/v1/hosts", {"name": MEGABYTE}),
        ("POST", "/v1/servers", {"name": "s", "flavor": MEGABYTE}),
        ("POST", "/v1/servers", {"name": "s", "flavor": "f", "ports": [{"physnet": MEGABYTE}]}),
        ("GET", f"/v1/aliases/{MEGABYTE[:8000]}", None),
    ],
)
def test_an_error_quotes_a_bounded_prefix_of_a_huge_value(api: Api, method: str, url: str, body: Any) -> None:
    resp = api.client.request(method, url, json=body, headers={"Authorization": f"Bearer {api.admin}"})
    assert 400 <= resp.status_code < 500, resp.text[:300]
    message = resp.json()["error"]["message"]
    assert len(message) < MESSAGE_MAX, message
    assert "x" * (SHOWN_MAX + 1) not in message, message


@pytest.mark.parametrize(
    ("spoil", "field"),
    [
        (lambda d: d["tags"].update({"k" * 65: "v"}), "tags"),
        (lambda d: d["tags"].update({"rack": "v" * 257}), "tags.rack"),
        (lambda d: d["tags"].update({f"t{i}": "v" for i in range(65)}), "tags"),
        (lambda d: d.update(netdevs=[{"name": f"n{i}"} for i in range(513)]), "netdevs"),
        (lambda d: d.update(vf_addrs=["0000:00:00.0"] * 4097), "vf_addrs"),
        (lambda d: d.update(vf_addrs=["0" * 17]), "vf_addrs[0]"),
        (lambda d: d.update(pcie_path=["0000:00:00.0"] * 33), "pcie_path"),
        (lambda d: d.update(driver="d" * 257), "driver"),
    ],
)
def test_every_device_field_has_a_cap(api: Api, agent: str, nfv_sysfs: Path, spoil: Any, field: str) -> None:
    report = report_body(nfv_sysfs, 0)
    device = copy.deepcopy(report["devices"][1])
    spoil(device)
    report["devices"][1] = device
    message = api.error("PUT", "/v1/hosts/nfv-1/inventory", token=agent, json=report, expect=400, code="invalid_input")
    assert message.startswith(f"devices[1].{field}"), message
    assert len(message) < MESSAGE_MAX, message


def test_a_report_of_more_devices_than_any_host_has_is_refused(api: Api, agent: str) -> None:
    devices = [
        {
            "address": f"0000:{i // 256:02x}:{(i % 256) // 8:02x}.{i % 8}",
            "vendor_id": "8086",
            "product_id": "1572",
            "class_code": "0x020000",
        }
        for i in range(8193)
    ]
    body = {"generation": 0, "numa_cells": [], "devices": devices}
    message = api.error("PUT", "/v1/hosts/nfv-1/inventory", token=agent, json=body, expect=400, code="invalid_input")
    assert message.startswith("devices"), message
