"""Story: an operator pastes Nova aliases, builds flavors on them, and is told exactly what is wrong."""

from __future__ import annotations

import pytest

from support.api_story import Api

QAT = {
    "name": "qat",
    "vendor_id": "8086",
    "product_id": "37c9",
    "device_type": "type-VF",
    "numa_policy": "preferred",
}


def test_aliases_and_flavors(api: Api) -> None:
    created = api.call("POST", "/v1/aliases", json=QAT, expect=201)
    assert (created["name"], created["numa_policy"], created["device_type"]) == (
        "qat",
        "preferred",
        "type-VF",
    )
    nic = [
        {
            "name": "nic",
            "vendor_id": "8086",
            "product_id": "154c",
            "device_type": "type-VF",
            "physical_network": "physnet1",
        },
        {"name": "nic", "vendor_id": "15b3", "product_id": "1018", "device_type": "type-VF"},
    ]
    assert len(api.call("POST", "/v1/aliases", json=nic, expect=201)["specs"]) == 2
    api.error("POST", "/v1/aliases", json=QAT, expect=409, code="conflict")
    assert [a["name"] for a in api.call("GET", "/v1/aliases")["aliases"]] == ["nic", "qat"]
    assert api.call("GET", "/v1/aliases/nic")["specs"][0]["physical_network"] == "physnet1"

    flavor = api.call(
        "POST",
        "/v1/flavors",
        expect=201,
        json={"name": "vnf.small", "vcpus": 4, "memory_mb": 8192, "pci_passthrough:alias": "qat:2, nic:1"},
    )
    assert flavor["pci_requests"] == [{"alias": "qat", "count": 2}, {"alias": "nic", "count": 1}]
    assert api.call("GET", "/v1/flavors/vnf.small")["vcpus"] == 4
    api.error("DELETE", "/v1/aliases/qat", expect=409, code="conflict")  # vnf.small uses it
    api.call("DELETE", "/v1/flavors/vnf.small", expect=204)
    api.call("DELETE", "/v1/aliases/qat", expect=204)
    api.error("GET", "/v1/aliases/qat", expect=404, code="not_found")
    api.error("GET", "/v1/flavors/vnf.small", expect=404, code="not_found")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "x", "vendor_id": "80866"}, "vendor_id ('80866')"),
        ({"name": "x", "product_id": "zz00"}, "product_id ('zz00')"),
        ({"name": "x", "numa_policy": "strict"}, "numa_policy ('strict')"),
        ({"name": "x", "device_type": "type-XYZ"}, "device_type ('type-XYZ')"),
        ([{"name": "x"}, {"name": "y"}], "one request creates one alias"),
        ([{"name": "x", "numa_policy": "required"}, {"name": "x"}], "NUMA policy mismatch"),
        ("qat", "expected a JSON object"),
    ],
)
def test_bad_alias_is_400_naming_key_and_value(api: Api, body: object, needle: str) -> None:
    message = api.error("POST", "/v1/aliases", json=body, expect=400, code="invalid_alias")
    assert needle in message
    assert api.call("GET", "/v1/aliases")["aliases"] == []  # nothing half-written


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "f", "vcpus": 1, "memory_mb": 1, "pci_passthrough:alias": "gpu:1"}, "'gpu' is not defined"),
        (
            {"name": "f", "vcpus": 1, "memory_mb": 1, "pci_passthrough:alias": "qat"},
            "'qat' is not NAME:COUNT",
        ),
        ({"name": "f", "vcpus": 1, "memory_mb": 1, "pci_passthrough:alias": "qat:0"}, "count '0'"),
        ({"name": "f", "vcpus": 0, "memory_mb": 1}, "vcpus"),
        ({"name": "f", "vcpus": 1, "memory_mb": -5}, "memory_mb"),
        ({"name": "f", "vcpus": 1, "memory_mb": 1, "numa_policy": "strict"}, "'strict'"),
        ({"name": "bad name", "vcpus": 1, "memory_mb": 1}, "'bad name'"),
    ],
)
def test_bad_flavor_is_400_naming_field_and_value(api: Api, body: object, needle: str) -> None:
    api.call("POST", "/v1/aliases", json=QAT, expect=201)
    resp = api.call("POST", "/v1/flavors", json=body, expect=400)
    assert resp["error"]["code"].startswith("invalid_")
    assert needle in resp["error"]["message"]
    assert api.call("GET", "/v1/flavors")["flavors"] == []


def test_a_flavor_names_its_root_disk_size_and_bad_sizes_are_named(api: Api) -> None:
    flavor = api.call(
        "POST", "/v1/flavors", expect=201, json={"name": "disk20", "vcpus": 1, "memory_mb": 512, "disk_gb": 20}
    )
    assert flavor["disk_gb"] == 20
    assert api.call("GET", "/v1/flavors/disk20")["disk_gb"] == 20
    plain = api.call("POST", "/v1/flavors", expect=201, json={"name": "plain", "vcpus": 1, "memory_mb": 512})
    assert plain["disk_gb"] is None
    assert [f["disk_gb"] for f in api.call("GET", "/v1/flavors")["flavors"]] == [20, None]
    for bad, shown in ((0, "0"), (65537, "65537"), ("20", "'20'"), (1.5, "1.5"), (True, "True")):
        message = api.error(
            "POST",
            "/v1/flavors",
            expect=400,
            code="invalid_flavor",
            json={"name": "b", "vcpus": 1, "memory_mb": 1, "disk_gb": bad},
        )
        assert "disk_gb" in message and shown in message
    api.error("GET", "/v1/flavors/b", expect=404, code="not_found")
