"""Story: an operator writes a flavor whose devices must sit together in the PCIe tree (``pci_group``),
gets a clear 400 for a bad one, and sees which relation each host failed and how close it came."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.api_story import Api
from support.reports import report_body

# The simulated NFV host's QAT PFs 3d:00.0 and 3f:00.0 sit behind one PCIe switch (upstream port 3b:00.0).
SWITCHED_QAT_PFS = {"0000:3d:00.0", "0000:3f:00.0"}


@pytest.fixture
def cloud(api: Api, nfv_sysfs: Path) -> Api:
    token = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, 0))
    qat = {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"}
    api.call("POST", "/v1/aliases", expect=201, json=qat)
    api.call("POST", "/v1/aliases", expect=201, json={"name": "t4", "vendor_id": "10de"})
    return api


def test_a_grouped_flavor_places_its_devices_together(cloud: Api) -> None:
    body = {"name": "crypto", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": "qat:2"}
    flavor = cloud.call("POST", "/v1/flavors", expect=201, json={**body, "pci_group": " same_switch( qat )"})
    assert flavor["pci_group"] == "same_switch(qat)"
    assert cloud.call("GET", "/v1/flavors/crypto")["pci_group"] == "same_switch(qat)"
    server = cloud.call("POST", "/v1/servers", expect=201, json={"name": "c1", "flavor": "crypto"})
    assert server["status"] == "scheduled"
    seen = {d["address"]: d for d in cloud.call("GET", "/v1/devices?host=nfv-1&limit=10000")["devices"]}
    assert {seen[d["address"]]["parent_addr"] for d in server["devices"]} <= SWITCHED_QAT_PFS


def test_explain_names_the_relation_and_the_nearest_match(cloud: Api) -> None:
    body = {"name": "ml", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": "qat:1, t4:1"}
    cloud.call("POST", "/v1/flavors", expect=201, json={**body, "pci_group": "same_root(qat, t4)"})
    why = cloud.call("POST", "/v1/scheduler/explain", json={"flavor": "ml"})
    assert why["candidates"] == []
    (rejected,) = why["rejected"]
    assert rejected["host"] == "nfv-1"
    assert (
        "pci_group same_root(qat, t4): no root complex holds all 2 devices (alias qat, alias t4)" in rejected["reason"]
    )
    assert "nearest: root complex pci0000:" in rejected["reason"]


def test_a_bad_pci_group_is_a_400_naming_the_field_and_the_value(cloud: Api) -> None:
    body = {"name": "bad", "vcpus": 1, "memory_mb": 1, "pci_passthrough:alias": "qat:1", "pci_group": "near(qat)"}
    message = cloud.error("POST", "/v1/flavors", json=body, expect=400, code="invalid_flavor")
    assert "pci_group ('near(qat)'): unknown relation 'near'" in message
    assert cloud.call("GET", "/v1/flavors")["flavors"] == []  # nothing half-written


def test_a_port_member_the_create_does_not_have_is_a_400(cloud: Api) -> None:
    body = {"name": "pair", "vcpus": 1, "memory_mb": 1024, "pci_group": "distinct_pf(port:0, port:1)"}
    cloud.call("POST", "/v1/flavors", expect=201, json=body)
    create = {"name": "p1", "flavor": "pair", "ports": [{"physnet": "physnet1"}]}
    message = cloud.error("POST", "/v1/servers", json=create, expect=400, code="invalid_input")
    assert "names port:1, but the server has 1 port(s)" in message
    assert cloud.call("GET", "/v1/servers")["servers"] == []
