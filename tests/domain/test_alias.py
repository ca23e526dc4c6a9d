"""Aliases (Nova's [pci] alias) and flavor PCI requests."""

from __future__ import annotations

import pytest

from epa.domain.alias import (
    AliasSpec,
    InvalidAlias,
    InvalidPciRequest,
    NumaPolicy,
    PciRequest,
    parse_aliases,
    parse_pci_requests,
)
from epa.domain.device import DevType


def test_nova_alias_with_defaults() -> None:
    a = AliasSpec.parse({"name": "qat", "vendor_id": "8086", "product_id": "37C9"})
    assert (a.vendor_id, a.product_id, a.device_type, a.numa_policy) == (
        "8086",
        "37c9",
        None,
        NumaPolicy.LEGACY,
    )


def test_alternatives_share_policy_and_type() -> None:
    aliases = parse_aliases(
        [
            {
                "name": "nic",
                "vendor_id": "8086",
                "product_id": "154c",
                "device_type": "type-VF",
                "numa_policy": "required",
                "physical_network": "physnet1",
            },
            [
                {
                    "name": "nic",
                    "vendor_id": "15b3",
                    "product_id": "1018",
                    "device_type": "type-VF",
                    "numa_policy": "required",
                }
            ],
        ]
    )
    nic = aliases["nic"]
    assert len(nic.specs) == 2
    assert (nic.numa_policy, nic.device_type) == (NumaPolicy.REQUIRED, DevType.VF)
    assert nic.specs[0].tags == (("physical_network", "physnet1"),)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"vendor_id": "8086"}], "alias[0]: property name (None)"),
        ([{"name": "x", "vendor_id": "80866"}], "property vendor_id ('80866') must be 4 hex digits"),
        ([{"name": "x", "product_id": "zz00"}], "property product_id ('zz00')"),
        ([{"name": "x", "device_type": "type-XX"}], "property device_type ('type-XX')"),
        ([{"name": "x", "numa_policy": "strict"}], "property numa_policy ('strict')"),
        ([{"name": "x", "physical_network": 3}], "tag physical_network (3) must be a string"),
        (["qat"], "alias[0]: expected a JSON object, got 'qat'"),
        ([{"name": "x", "numa_policy": "required"}, {"name": "x"}], "NUMA policy mismatch for alias 'x'"),
        ([{"name": "x", "device_type": "type-VF"}, {"name": "x"}], "device type mismatch for alias 'x'"),
    ],
)
def test_bad_alias_names_key_and_value(entries: list[object], message: str) -> None:
    with pytest.raises(InvalidAlias) as err:
        parse_aliases(entries)
    assert message in str(err.value)


def test_pci_requests() -> None:
    assert parse_pci_requests("qat:2, t4:1") == (PciRequest("qat", 2), PciRequest("t4", 1))
    assert parse_pci_requests(" qat : 2 ") == (PciRequest("qat", 2),)
    assert parse_pci_requests("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("qat", "item 'qat' is not NAME:COUNT"),
        ("qat:0", "count '0' must be a positive integer"),
        ("qat:two", "count 'two'"),
        ("qat:1,,t4:1", "item '' is not NAME:COUNT"),
        ("qat:1, qat:2", "names alias 'qat' twice"),
        ("gpu:1", "alias 'gpu' is not defined"),
    ],
)
def test_bad_pci_requests(text: str, message: str) -> None:
    with pytest.raises(InvalidPciRequest) as err:
        parse_pci_requests(text, known={"qat": 1, "t4": 1})
    assert message in str(err.value)
