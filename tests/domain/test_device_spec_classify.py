"""classify(): which devices are assignable, with which tags, and the warnings."""

from __future__ import annotations

import pytest

from epa.domain.address import PciAddress
from epa.domain.device import DevType, NetInterface, PciDevice
from epa.domain.device_spec import ClassifiedDevice, DeviceSpec, classify, parse_device_specs

A = PciAddress.parse
PF_ADDR = "0000:3b:00.0"


def dev(
    address: str,
    vendor: str = "8086",
    product: str = "1572",
    class_code: str = "020000",
    netdevs: tuple[str, ...] = (),
    dev_type: DevType = DevType.PCI,
    parent: str | None = None,
    totalvfs: int | None = None,
) -> PciDevice:
    return PciDevice(
        address=A(address),
        vendor_id=vendor,
        product_id=product,
        class_code=class_code,
        dev_type=dev_type,
        parent_addr=A(parent) if parent else None,
        netdevs=tuple(NetInterface(n) for n in netdevs),
        sriov_totalvfs=totalvfs,
    )


def sriov_host() -> list[PciDevice]:
    """A PF with two VFs (on another bus, as on real NICs), a second port without SR-IOV, a GPU and
    a root port."""
    return [
        dev("0000:00:01.0", "8086", "2030", class_code="060400"),
        dev(PF_ADDR, "8086", "1572", netdevs=("ens1f0",), dev_type=DevType.PF, totalvfs=8),
        dev("0000:3b:00.1", "8086", "1572", netdevs=("ens1f1",)),
        dev("0000:3b:02.0", "8086", "154c", netdevs=("ens1f0v0",), dev_type=DevType.VF, parent=PF_ADDR),
        dev("0000:3b:02.1", "8086", "154c", dev_type=DevType.VF, parent=PF_ADDR),
        dev("0000:af:00.0", "10de", "1eb8", class_code="030200"),
    ]


def run(specs: list[object], devices: list[PciDevice]) -> tuple[dict[str, ClassifiedDevice], tuple[str, ...]]:
    classified, warnings = classify(parse_device_specs(specs), devices)  # type: ignore[arg-type]
    assert [c.device for c in classified] == devices  # input order kept
    return {str(c.device.address): c for c in classified}, warnings


def assignable(result: dict[str, ClassifiedDevice]) -> set[str]:
    return {a for a, c in result.items() if c.assignable}


def test_no_specs_nothing_assignable() -> None:
    result, warnings = run([], sriov_host())
    assert assignable(result) == set()
    assert all(c.tags == {} and c.spec_index is None for c in result.values())
    assert warnings == ()


def test_vendor_product_match() -> None:
    result, _ = run(['{"vendor_id": "10de", "product_id": "1EB8"}'], sriov_host())
    assert assignable(result) == {"0000:af:00.0"}
    assert result["0000:af:00.0"].spec_index == 0


def test_device_ids_compare_case_insensitively() -> None:
    gpu = dev("0000:af:00.0", "10DE", "1EB8", class_code="030200")
    result, _ = run(['{"vendor_id": "10de", "product_id": "1eb8"}'], [gpu])
    assert assignable(result) == {"0000:af:00.0"}


def test_first_matching_spec_decides_tags() -> None:
    result, _ = run(
        [
            '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet1", "trusted": "yes"}',
            '[{"vendor_id": "8086", "physical_network": "physnet2"}, {"address": "*:af:*.*", "gpu": "t4"}]',
        ],
        sriov_host(),
    )
    vf = result["0000:3b:02.0"]
    assert (vf.assignable, vf.spec_index, vf.tags) == (
        True,
        0,
        {"physical_network": "physnet1", "trusted": "true"},
    )
    pf = result[PF_ADDR]
    assert (pf.spec_index, pf.tags) == (1, {"physical_network": "physnet2"})
    assert result["0000:af:00.0"].tags == {"gpu": "t4"}
    assert result["0000:af:00.0"].spec_index == 2


def test_pf_address_matches_the_pf_and_its_vfs() -> None:
    result, _ = run([f'{{"address": "{PF_ADDR}", "physical_network": "p"}}'], sriov_host())
    assert assignable(result) == {PF_ADDR, "0000:3b:02.0", "0000:3b:02.1"}
    assert result["0000:3b:02.1"].tags == {"physical_network": "p"}


def test_pf_address_with_vf_product_matches_only_the_vfs() -> None:
    result, _ = run([f'{{"address": "{PF_ADDR}", "product_id": "154c"}}'], sriov_host())
    assert assignable(result) == {"0000:3b:02.0", "0000:3b:02.1"}


def test_pf_address_as_regex_matches_its_vfs() -> None:
    spec = '{"address": {"domain": "0000", "bus": "3b", "slot": "00", "function": "0"}}'
    result, _ = run([spec], sriov_host())
    assert assignable(result) == {PF_ADDR, "0000:3b:02.0", "0000:3b:02.1"}


def test_partial_pf_address_does_not_extend_to_vfs() -> None:
    # "3b:00.0" leaves the domain open: not a single address, so only address matching applies.
    result, _ = run(['{"address": "3b:00.0"}'], sriov_host())
    assert assignable(result) == {PF_ADDR}


def test_single_address_of_a_non_pf_matches_only_it() -> None:
    result, _ = run(['{"address": "0000:3b:00.1"}'], sriov_host())
    assert assignable(result) == {"0000:3b:00.1"}


def test_pf_recognised_by_totalvfs_alone() -> None:
    pf = dev("0000:5e:00.0", totalvfs=4)
    vf = dev("0000:5e:10.0", dev_type=DevType.VF, parent="0000:5e:00.0")
    result, _ = run(['{"address": "0000:5e:00.0"}'], [pf, vf])
    assert assignable(result) == {"0000:5e:00.0", "0000:5e:10.0"}


def test_vf_address_glob_matches_vfs_by_their_own_address() -> None:
    result, _ = run(['{"address": "*:3b:02.*"}'], sriov_host())
    assert assignable(result) == {"0000:3b:02.0", "0000:3b:02.1"}


def test_devname_of_a_pf_matches_the_pf_and_its_vfs() -> None:
    result, warnings = run(['{"devname": "ens1f0", "physical_network": "p"}'], sriov_host())
    assert assignable(result) == {PF_ADDR, "0000:3b:02.0", "0000:3b:02.1"}
    assert warnings == ()


def test_devname_of_a_non_pf_matches_only_that_device() -> None:
    result, _ = run(['{"devname": "ens1f1"}'], sriov_host())
    assert assignable(result) == {"0000:3b:00.1"}


def test_devname_of_a_vf_matches_only_that_vf() -> None:
    result, _ = run(['{"devname": "ens1f0v0"}'], sriov_host())
    assert assignable(result) == {"0000:3b:02.0"}


def test_devname_with_ids_filters_the_family() -> None:
    result, _ = run(['{"devname": "ens1f0", "product_id": "154c"}'], sriov_host())
    assert assignable(result) == {"0000:3b:02.0", "0000:3b:02.1"}


def test_devname_not_on_host_matches_nothing_and_warns() -> None:
    result, warnings = run(['{"devname": "eth9"}', '{"vendor_id": "10de"}'], sriov_host())
    assert assignable(result) == {"0000:af:00.0"}
    assert len(warnings) == 1
    assert "device_spec[0]: devname 'eth9' is not an interface" in warnings[0]


def test_remote_managed_pf_is_refused_with_a_warning_and_vfs_stay() -> None:
    result, warnings = run([f'{{"address": "{PF_ADDR}", "remote_managed": "true"}}'], sriov_host())
    assert assignable(result) == {"0000:3b:02.0", "0000:3b:02.1"}
    pf = result[PF_ADDR]
    assert (pf.assignable, pf.spec_index, pf.tags) == (False, 0, {})
    assert result["0000:3b:02.0"].tags == {"remote_managed": "true"}
    assert len(warnings) == 1
    assert warnings[0].startswith("device_spec[0]: remote_managed=true applies only to VFs")
    assert PF_ADDR in warnings[0]


def test_remote_managed_false_pf_is_assignable() -> None:
    result, warnings = run([f'{{"address": "{PF_ADDR}", "remote_managed": "no"}}'], sriov_host())
    assert PF_ADDR in assignable(result)
    assert result[PF_ADDR].tags == {"remote_managed": "false"}
    assert warnings == ()


def test_remote_managed_refusal_does_not_fall_through_to_later_specs() -> None:
    result, _ = run([f'{{"address": "{PF_ADDR}", "remote_managed": "1"}}', '{"vendor_id": "8086"}'], sriov_host())
    assert not result[PF_ADDR].assignable
    assert result[PF_ADDR].spec_index == 0


def test_remote_managed_spec_for_vf_product_never_touches_the_pf() -> None:
    result, warnings = run(['{"vendor_id": "8086", "product_id": "154c", "remote_managed": "true"}'], sriov_host())
    assert assignable(result) == {"0000:3b:02.0", "0000:3b:02.1"}
    assert warnings == ()


def test_bridge_matched_by_a_wildcard_is_assignable_as_in_nova_with_a_warning() -> None:
    result, warnings = run(['{"vendor_id": "8086", "product_id": "2030"}'], sriov_host())
    assert assignable(result) == {"0000:00:01.0"}
    assert len(warnings) == 1
    assert "device_spec[0]: matches PCI bridge 0000:00:01.0 (class 060400)" in warnings[0]


def test_unmatched_bridge_gives_no_warning() -> None:
    result, warnings = run(['{"vendor_id": "10de"}'], sriov_host())
    assert not result["0000:00:01.0"].assignable
    assert warnings == ()


def test_vf_whose_pf_is_not_in_the_list_matches_by_its_own_address() -> None:
    vf = dev("0000:3b:02.0", dev_type=DevType.VF, parent=PF_ADDR)
    result, _ = run([f'{{"address": "{PF_ADDR}"}}'], [vf])
    assert assignable(result) == set()


@pytest.mark.parametrize("spec", ['{"address": "*:*:*.*"}', "{}", '{"vendor_id": "*", "product_id": "*"}'])
def test_match_everything(spec: str) -> None:
    devices = sriov_host()
    result, _ = run([spec], devices)
    assert assignable(result) == {str(d.address) for d in devices}


def test_classified_device_defaults() -> None:
    d = sriov_host()[0]
    c = ClassifiedDevice(d)
    assert (c.assignable, c.tags, c.spec_index) == (False, {}, None)


def test_classify_accepts_specs_built_directly() -> None:
    spec = DeviceSpec.parse({"vendor_id": "10de"}, 0)
    classified, _ = classify([spec], sriov_host())
    assert [c.assignable for c in classified] == [False, False, False, False, False, True]
