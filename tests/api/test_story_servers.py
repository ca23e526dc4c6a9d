"""Story: an operator defines aliases and a flavor, creates servers until the devices run out, asks why,
and deletes a server to get its devices back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.api_story import Api
from support.reports import report_body

FLAVOR = {"name": "vnf.small", "vcpus": 4, "memory_mb": 4096, "pci_passthrough:alias": "qat:2, t4:1"}


@pytest.fixture
def cloud(api: Api, nfv_sysfs: Path, no_numa_sysfs: Path) -> Api:
    for name, root in (("nfv-1", nfv_sysfs), ("edge-1", no_numa_sysfs)):
        token = api.call("POST", "/v1/hosts", json={"name": name}, expect=201)["agent_token"]
        api.call("PUT", f"/v1/hosts/{name}/inventory", token=token, json=report_body(root, 0))
    api.call(
        "POST",
        "/v1/aliases",
        expect=201,
        json={
            "name": "qat",
            "vendor_id": "8086",
            "product_id": "37c9",
            "device_type": "type-VF",
            "numa_policy": "required",
        },
    )
    api.call("POST", "/v1/aliases", expect=201, json={"name": "t4", "vendor_id": "10de", "numa_policy": "required"})
    api.call("POST", "/v1/flavors", json=FLAVOR, expect=201)
    api.call("POST", "/v1/flavors", expect=201, json={"name": "plain", "vcpus": 2, "memory_mb": 1024})
    return api


def devices(api: Api) -> dict[str, dict[str, Any]]:
    return {d["address"]: d for d in api.call("GET", "/v1/devices?host=nfv-1&limit=10000")["devices"]}


def test_create_claims_devices_then_runs_out_then_delete_releases(cloud: Api) -> None:
    server = cloud.call("POST", "/v1/servers", json={"name": "vnf-1", "flavor": "vnf.small"}, expect=201)
    assert (server["status"], server["host"], server["host_nodes"]) == ("scheduled", "nfv-1", [1])
    granted = {d["address"]: d["request_label"] for d in server["devices"]}
    assert granted["0000:af:00.0"] == "alias t4"
    assert sorted(granted.values()) == ["alias qat", "alias qat", "alias t4"]
    seen = devices(cloud)
    for address in granted:
        assert (seen[address]["status"], seen[address]["owner"]) == ("claimed", server["id"])
    qat_pf = next(seen[a]["parent_addr"] for a, label in granted.items() if label == "alias qat")
    assert seen[qat_pf]["status"] == "unavailable"  # a PF is never used while one of its VFs is
    assert cloud.call("GET", f"/v1/servers/{server['id']}")["devices"] == server["devices"]

    # The only T4 is taken: the next server cannot be placed, and the reason says so per host.
    second = cloud.call("POST", "/v1/servers", json={"name": "vnf-2", "flavor": "vnf.small"}, expect=201)
    assert second["status"] == "error"
    assert second["host"] is None
    assert second["status_reason"].startswith("no valid host: ")
    assert "1 host: fewer than 1 free 10de:* device (alias t4, policy required)" in second["status_reason"]
    why = cloud.call("POST", "/v1/scheduler/explain", json={"flavor": "vnf.small"})
    assert why["candidates"] == []
    assert {r["host"] for r in why["rejected"]} == {"nfv-1", "edge-1"}

    deleting = cloud.call("DELETE", f"/v1/servers/{server['id']}", expect=202)
    assert deleting["status"] == "deleting"
    assert devices(cloud)["0000:af:00.0"]["status"] == "claimed"  # until the host's agent has torn it down
    assert cloud.call("POST", f"/v1/servers/{server['id']}/released")["status"] == "deleted"
    seen = devices(cloud)
    assert all(seen[a]["status"] == "available" and seen[a]["owner"] is None for a in granted)
    assert seen[qat_pf]["status"] == "available"
    third = cloud.call("POST", "/v1/servers", json={"name": "vnf-3", "flavor": "vnf.small"}, expect=201)
    assert third["status"] == "scheduled"
    listed = {s["name"]: s["status"] for s in cloud.call("GET", "/v1/servers")["servers"]}
    assert listed == {"vnf-2": "error", "vnf-3": "scheduled"}
    # A server that never got a host is deleted at once.
    assert cloud.call("DELETE", f"/v1/servers/{second['id']}", expect=202)["status"] == "deleted"


def test_ports_and_explain(cloud: Api) -> None:
    why = cloud.call(
        "POST",
        "/v1/scheduler/explain",
        json={"flavor": "plain", "ports": [{"physnet": "physnet1", "vnic_type": "direct"}]},
    )
    assert [c["host"] for c in why["candidates"]] == ["nfv-1"]
    assert why["candidates"][0]["devices"][0]["request"] == "port 0 (direct on physnet1)"
    assert why["rejected"] == [
        {"host": "edge-1", "reason": "0 free VF [physical_network=physnet1], 1 requested (port 0 (direct on physnet1))"}
    ]
    server = cloud.call(
        "POST",
        "/v1/servers",
        expect=201,
        json={"name": "router", "flavor": "plain", "ports": [{"physnet": "physnet1", "vnic_type": "direct-physical"}]},
    )
    assert server["status"] == "scheduled"
    assert [d["address"] for d in server["devices"]] == ["0000:18:00.0"]
    seen = devices(cloud)
    assert seen["0000:18:02.0"]["status"] == "unavailable"  # the PF's VFs, while the PF is in use
    assert not cloud.call(
        "POST", "/v1/scheduler/explain", json={"flavor": "plain", "ports": [{"physnet": "physnet1"}]}
    )["candidates"]


@pytest.mark.parametrize(
    ("body", "status", "code", "needle"),
    [
        ({"name": "x", "flavor": "nope"}, 404, "not_found", "nope"),
        (
            {"name": "x", "flavor": "plain", "ports": [{"physnet": "p", "vnic_type": "bridge"}]},
            400,
            "invalid_port",
            "'bridge'",
        ),
        ({"name": "bad name", "flavor": "plain"}, 400, "invalid_input", "'bad name'"),
        ({"name": "x", "flavor": "plain", "ports": [{"physnet": "p", "vlan": 5000}]}, 400, "invalid_port", "5000"),
    ],
)
def test_bad_server_requests(cloud: Api, body: dict[str, Any], status: int, code: str, needle: str) -> None:
    message = cloud.error("POST", "/v1/servers", json=body, expect=status, code=code)
    assert needle in message
    assert cloud.call("GET", "/v1/servers")["servers"] == []


def test_a_host_with_servers_is_deleted_only_when_they_are_gone(cloud: Api) -> None:
    server = cloud.call("POST", "/v1/servers", json={"name": "vnf-1", "flavor": "vnf.small"}, expect=201)
    message = cloud.error("DELETE", "/v1/hosts/nfv-1", expect=409, code="conflict")
    assert "nfv-1" in message
    cloud.call("DELETE", f"/v1/servers/{server['id']}?force=true", expect=202)
    cloud.call("DELETE", "/v1/hosts/nfv-1", expect=204)
    cloud.error("GET", "/v1/hosts/nfv-1", expect=404, code="not_found")


def test_the_agent_builds_stops_starts_and_fails_a_server(cloud: Api) -> None:
    edge_token = cloud.call("POST", "/v1/hosts/edge-1/token")["agent_token"]
    nfv_token = cloud.call("POST", "/v1/hosts/nfv-1/token")["agent_token"]
    server = cloud.call(
        "POST",
        "/v1/servers",
        expect=201,
        json={"name": "vnf-1", "flavor": "plain", "ports": [{"physnet": "physnet1", "vlan": 100}]},
    )
    sid = server["id"]
    assert server["ports"][0]["mac"].startswith("fa:16:3e:")  # generated, stable
    assert cloud.call("GET", f"/v1/servers/{sid}")["ports"][0]["mac"] == server["ports"][0]["mac"]
    assert server["devices"][0]["port"] == 0

    mine = cloud.call("GET", "/v1/hosts/nfv-1/servers", token=nfv_token)["servers"]
    assert [s["id"] for s in mine] == [sid]
    cloud.error("GET", "/v1/hosts/nfv-1/servers", token=edge_token, expect=403, code="forbidden")
    cloud.error(
        "POST", f"/v1/servers/{sid}/state", token=edge_token, json={"status": "building"}, expect=403, code="forbidden"
    )

    cloud.call("POST", f"/v1/servers/{sid}/state", token=nfv_token, json={"status": "building"})
    active = cloud.call(
        "POST",
        f"/v1/servers/{sid}/state",
        token=nfv_token,
        json={
            "status": "active",
            "domain_uuid": "6f1d3c4e-0000-4000-8000-000000000001",
            "domain_state": "running",
            "domain_xml": "<domain/>",
        },
    )
    assert (active["status"], active["domain_state"], active["domain_xml"]) == ("active", "running", "<domain/>")
    assert cloud.call("POST", f"/v1/servers/{sid}/stop")["status"] == "stopped"
    assert cloud.call("POST", f"/v1/servers/{sid}/start")["status"] == "active"
    message = cloud.error(
        "POST",
        f"/v1/servers/{sid}/state",
        token=nfv_token,
        json={"status": "building"},
        expect=409,
        code="invalid_server_transition",
    )
    assert "active to building" in message
    cloud.error(
        "POST",
        f"/v1/servers/{sid}/state",
        token=nfv_token,
        json={"status": "deleted"},
        expect=400,
        code="invalid_input",
    )

    failed = cloud.call(
        "POST",
        f"/v1/servers/{sid}/state",
        token=nfv_token,
        json={"status": "error", "reason": "libvirt: internal error: qemu unexpectedly closed the monitor"},
    )
    assert (failed["status"], failed["host"]) == ("error", "nfv-1")
    assert failed["status_reason"] == "libvirt: internal error: qemu unexpectedly closed the monitor"
    assert failed["devices"] == []
    assert devices(cloud)[server["devices"][0]["address"]]["status"] == "available"
    cloud.error("POST", f"/v1/servers/{sid}/released", token=nfv_token, expect=409, code="conflict")
    assert cloud.call("DELETE", f"/v1/servers/{sid}", expect=202)["status"] == "deleting"
    assert cloud.call("POST", f"/v1/servers/{sid}/released", token=nfv_token)["status"] == "deleted"
    assert cloud.call("GET", "/v1/hosts/nfv-1/servers", token=nfv_token)["servers"] == []


def test_a_host_enabled_a_moment_ago_is_used_at_once(cloud: Api) -> None:
    cloud.call("PATCH", "/v1/hosts/nfv-1", json={"enabled": False})
    refused = cloud.call("POST", "/v1/servers", json={"name": "a", "flavor": "vnf.small"}, expect=201)
    assert refused["status"] == "error"
    assert "host is disabled" in refused["status_reason"]
    cloud.call("PATCH", "/v1/hosts/nfv-1", json={"enabled": True})
    placed = cloud.call("POST", "/v1/servers", json={"name": "b", "flavor": "vnf.small"}, expect=201)
    assert (placed["status"], placed["host"]) == ("scheduled", "nfv-1")


def test_devices_are_allocated_once_the_domain_runs(api: Api) -> None:
    token = api.call("POST", "/v1/hosts", json={"name": "h"}, expect=201)["agent_token"]

    cells = [{"node": 0, "socket": 0, "cpus": [0, 1], "memory_mb": 4096}]
    device = {
        "address": "0000:3b:00.0", "vendor_id": "10de", "product_id": "1eb8", "class_code": "030200",
        "dev_type": "type-PCI", "numa_node": 0, "assignable": True, "tags": {},
    }  # fmt: skip
    api.call(
        "PUT", "/v1/hosts/h/inventory", token=token, json={"generation": 0, "numa_cells": cells, "devices": [device]}
    )
    api.call("POST", "/v1/aliases", json={"name": "t4", "vendor_id": "10de", "product_id": "1eb8"}, expect=201)
    api.call(
        "POST",
        "/v1/flavors",
        json={"name": "g", "vcpus": 1, "memory_mb": 64, "pci_passthrough:alias": "t4:1"},
        expect=201,
    )
    server = api.call("POST", "/v1/servers", json={"name": "s", "flavor": "g"}, expect=201)

    def status() -> str:
        return api.call("GET", "/v1/hosts/h/devices/0000:3b:00.0")["status"]

    assert status() == "claimed"
    api.call("POST", f"/v1/servers/{server['id']}/state", token=token, json={"status": "building"})
    assert status() == "claimed"
    api.call(
        "POST", f"/v1/servers/{server['id']}/state", token=token, json={"status": "active", "domain_state": "running"}
    )
    assert status() == "allocated"
    api.call("DELETE", f"/v1/servers/{server['id']}", expect=202)
    api.call("POST", f"/v1/servers/{server['id']}/released", token=token)
    assert status() == "available"
