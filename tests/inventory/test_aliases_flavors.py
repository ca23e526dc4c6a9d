"""Aliases and flavors: CRUD, and an alias cannot go while a flavor requests it."""

from __future__ import annotations

import pytest

from epa.domain.alias import NumaPolicy, parse_aliases
from epa.domain.device import DevType
from epa.domain.flavor import Flavor, InvalidFlavor
from epa.errors import Conflict, NotFound
from epa.inventory import (
    Database,
    create_alias,
    create_flavor,
    delete_alias,
    delete_flavor,
    get_alias,
    get_flavor,
    known_aliases,
    list_aliases,
    list_flavors,
)
from epa.wire.flavor import flavor_out

ALIASES = parse_aliases(
    [
        [
            {"name": "nic", "vendor_id": "8086", "product_id": "154c", "device_type": "type-VF",
             "numa_policy": "required", "physical_network": "physnet1"},
            {"name": "nic", "vendor_id": "15b3", "product_id": "1018", "device_type": "type-VF",
             "numa_policy": "required", "physical_network": "physnet1"},
        ],
        {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"},
        {"name": "t4", "vendor_id": "10de", "product_id": "1eb8"},
    ]
)  # fmt: skip


@pytest.fixture
def aliases(db: Database) -> None:
    for alias in ALIASES.values():
        create_alias(db, alias)


def test_alias_round_trip(db: Database, aliases: None) -> None:
    nic = get_alias(db, "nic")
    assert nic == ALIASES["nic"]
    assert (nic.numa_policy, nic.device_type, len(nic.specs)) == (NumaPolicy.REQUIRED, DevType.VF, 2)
    assert nic.specs[0].tags == (("physical_network", "physnet1"),)
    assert [a.name for a in list_aliases(db)] == ["nic", "qat", "t4"]
    assert known_aliases(db) == ALIASES


def test_alias_conflicts_and_not_found(db: Database, aliases: None) -> None:
    with pytest.raises(Conflict, match="'qat' already exists"):
        create_alias(db, ALIASES["qat"])
    with pytest.raises(NotFound, match="'gpu'"):
        get_alias(db, "gpu")
    with pytest.raises(NotFound, match="'gpu'"):
        delete_alias(db, "gpu")


def test_flavor_round_trip(db: Database, aliases: None) -> None:
    body = {"name": "vnf.small", "vcpus": 4, "memory_mb": 8192, "pci_passthrough:alias": "qat:2,nic:1"}
    flavor = create_flavor(db, Flavor.parse(body, known_aliases(db)))
    create_flavor(db, Flavor.parse({"name": "plain", "vcpus": 1, "memory_mb": 512, "numa_policy": "socket"}, {}))
    assert get_flavor(db, "vnf.small") == flavor
    assert flavor_out(get_flavor(db, "vnf.small")).model_dump(by_alias=True)["pci_passthrough:alias"] == "qat:2, nic:1"
    assert get_flavor(db, "plain").numa_policy is NumaPolicy.SOCKET
    assert [f.name for f in list_flavors(db)] == ["plain", "vnf.small"]
    with pytest.raises(Conflict, match="'plain' already exists"):
        create_flavor(db, get_flavor(db, "plain"))


def test_alias_in_use_cannot_be_deleted(db: Database, aliases: None) -> None:
    for name in ("b", "a"):
        body = {"name": name, "vcpus": 1, "memory_mb": 1, "pci_passthrough:alias": "t4:1"}
        create_flavor(db, Flavor.parse(body, known_aliases(db)))
    with pytest.raises(Conflict, match="used by flavor"):
        delete_alias(db, "t4")
    delete_flavor(db, "a")
    with pytest.raises(Conflict, match=r"flavor\(s\) b$"):
        delete_alias(db, "t4")
    delete_flavor(db, "b")
    delete_alias(db, "t4")
    assert "t4" not in known_aliases(db)
    delete_alias(db, "qat")  # never used


def test_flavor_naming_an_alias_deleted_meanwhile(db: Database, aliases: None) -> None:
    flavor = Flavor.parse({"name": "f", "vcpus": 1, "memory_mb": 1, "pci_passthrough:alias": "qat:1"}, ALIASES)
    delete_alias(db, "qat")
    with pytest.raises(InvalidFlavor, match="'qat'"):
        create_flavor(db, flavor)
    with pytest.raises(NotFound):
        get_flavor(db, "f")


def test_flavor_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="'x'"):
        get_flavor(db, "x")
    with pytest.raises(NotFound, match="'x'"):
        delete_flavor(db, "x")
