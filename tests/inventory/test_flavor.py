"""Flavor.parse: a flavor body from the API, checked field by field against the known aliases."""

from __future__ import annotations

from typing import Any

import pytest

from epa.domain.alias import NumaPolicy, PciRequest, parse_aliases
from epa.domain.flavor import MAX_DISK_GB, MAX_MEMORY_MB, Flavor, InvalidFlavor, is_valid_name
from epa.wire.flavor import flavor_out

ALIASES = parse_aliases(
    [
        {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"},
        {"name": "t4", "vendor_id": "10de", "product_id": "1eb8", "numa_policy": "preferred"},
    ]
)


def body(**kw: Any) -> dict[str, Any]:
    return {"name": "vnf.small", "vcpus": 4, "memory_mb": 8192, **kw}


def test_full_flavor_is_normalised_and_round_trips_to_json() -> None:
    f = Flavor.parse(
        body(**{"pci_passthrough:alias": " qat : 2 ,t4:1", "numa_policy": "required", "numa_nodes": 2, "image": "deb"}),
        ALIASES,
    )
    assert f.pci_alias == "qat:2, t4:1"
    assert f.pci_requests == (PciRequest("qat", 2), PciRequest("t4", 1))
    assert flavor_out(f).model_dump(by_alias=True) == {
        "name": "vnf.small",
        "vcpus": 4,
        "memory_mb": 8192,
        "pci_passthrough:alias": "qat:2, t4:1",
        "pci_requests": [{"alias": "qat", "count": 2}, {"alias": "t4", "count": 1}],
        "numa_policy": "required",
        "numa_nodes": 2,
        "disk_gb": None,
        "image": "deb",
        "pci_group": "",
    }
    assert f.policy_for(ALIASES["t4"]) is NumaPolicy.REQUIRED


def test_defaults_no_pci_and_alias_policy_applies() -> None:
    f = Flavor.parse(body(), ALIASES)
    assert (f.pci_alias, f.pci_requests, f.numa_policy, f.numa_nodes) == ("", (), None, 1)
    assert f.policy_for(ALIASES["t4"]) is NumaPolicy.PREFERRED
    assert Flavor.parse(body(**{"pci_passthrough:alias": None, "numa_nodes": None}), ALIASES) == f


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"name": ""}, ["name", "''"]),
        ({"name": "-x"}, ["name", "'-x'"]),
        ({"name": "a" * 64}, ["name"]),
        ({"name": "a b"}, ["name", "'a b'"]),
        ({"name": 7}, ["name", "7"]),
        ({"vcpus": 0}, ["vcpus", "0"]),
        ({"vcpus": 1025}, ["vcpus", "1025"]),
        ({"vcpus": True}, ["vcpus", "True"]),
        ({"vcpus": "4"}, ["vcpus", "'4'"]),
        ({"memory_mb": MAX_MEMORY_MB + 1}, ["memory_mb", str(MAX_MEMORY_MB + 1)]),
        ({"numa_nodes": 9}, ["numa_nodes", "9"]),
        ({"disk_gb": 0}, ["disk_gb", "0"]),
        ({"disk_gb": MAX_DISK_GB + 1}, ["disk_gb", str(MAX_DISK_GB + 1)]),
        ({"disk_gb": "20"}, ["disk_gb", "'20'"]),
        ({"disk_gb": 2.5}, ["disk_gb", "2.5"]),
        ({"disk_gb": False}, ["disk_gb", "False"]),
        ({"numa_policy": "strict"}, ["numa_policy", "'strict'"]),
        ({"pci_passthrough:alias": "gpu:1"}, ["pci_passthrough:alias", "'gpu'"]),
        ({"pci_passthrough:alias": "qat:0"}, ["pci_passthrough:alias", "qat:0"]),
        ({"pci_passthrough:alias": "qat"}, ["pci_passthrough:alias", "'qat'"]),
        ({"pci_passthrough:alias": "qat:1, qat:2"}, ["qat", "twice"]),
        ({"pci_passthrough:alias": 3}, ["pci_passthrough:alias", "3"]),
        ({"extra_specs": {}}, ["unknown field", "'extra_specs'"]),
    ],
)
def test_bad_fields_are_named_with_their_value(changes: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(InvalidFlavor) as e:
        Flavor.parse(body(**changes), ALIASES)
    assert e.value.code == "invalid_flavor"
    for word in words:
        assert word in str(e.value)


@pytest.mark.parametrize("missing", ["vcpus", "memory_mb"])
def test_required_fields(missing: str) -> None:
    b = body()
    del b[missing]
    with pytest.raises(InvalidFlavor, match=f"{missing} is required"):
        Flavor.parse(b, ALIASES)


def test_not_an_object() -> None:
    with pytest.raises(InvalidFlavor, match="JSON object"):
        Flavor.parse([], ALIASES)  # type: ignore[arg-type]


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(InvalidFlavor, match="does not match"):
        Flavor("f", 1, 1, pci_alias="qat:1")
    with pytest.raises(InvalidFlavor, match="vcpus"):
        Flavor("f", 0, 1)


@pytest.mark.parametrize(("name", "ok"), [("a", True), ("nfv-1.lab_2", True), ("9", True), ("_a", False)])
def test_name_rule(name: str, ok: bool) -> None:
    assert is_valid_name(name) is ok


def test_disk_gb_is_optional_and_kept() -> None:
    f = Flavor.parse(body(disk_gb=20), ALIASES)
    assert f.disk_gb == 20 and flavor_out(f).model_dump(by_alias=True)["disk_gb"] == 20
    assert Flavor.parse(body(disk_gb=None), ALIASES).disk_gb is None
