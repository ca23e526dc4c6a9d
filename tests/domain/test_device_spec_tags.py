"""Tags: free tags, strict booleans, resource_class and traits normalisation."""

from __future__ import annotations

import pytest

from epa.domain.device_spec import DeviceSpec
from epa.domain.device_spec.tags import (
    BOOLEAN_TAGS,
    normalise_resource_class,
    normalise_traits,
)
from epa.errors import DeviceSpecError


def tags(obj: dict[str, object]) -> dict[str, str]:
    return DeviceSpec.parse(obj, 0).tags


def test_match_keys_are_not_tags_and_order_is_kept() -> None:
    spec = DeviceSpec.parse(
        {"vendor_id": "8086", "zone": "b", "physical_network": "physnet1", "address": "0a:00.1", "a": "x"},
        0,
    )
    assert spec.tag_pairs == (("zone", "b"), ("physical_network", "physnet1"), ("a", "x"))


def test_free_tag_values() -> None:
    assert tags({"custom": " kept as written ", "n": 3, "f": 1.5, "b": True, "c": False}) == {
        "custom": " kept as written ",
        "n": "3",
        "f": "1.5",
        "b": "true",
        "c": "false",
    }


def test_null_tag_means_not_set() -> None:
    assert tags({"physical_network": None, "remote_managed": "true"}) == {"remote_managed": "true"}


@pytest.mark.parametrize(
    ("value", "kind"),
    [(["a"], "a list"), ({"a": 1}, "an object")],
)
def test_structured_tag_values_are_refused(value: object, kind: str) -> None:
    with pytest.raises(DeviceSpecError) as info:
        DeviceSpec.parse({"physical_network": value}, 1)
    assert str(info.value).startswith("device_spec[1]: property physical_network (")
    assert f"not {kind}" in str(info.value)


def test_non_finite_float_tag_is_refused() -> None:
    with pytest.raises(DeviceSpecError, match="property weight"):
        DeviceSpec.parse({"weight": float("inf")}, 0)


TRUE_INPUTS = ["true", "True", "TRUE", "yes", "Yes", "on", "ON", "1", "t", "T", "y", "Y", " true ", True, 1]
FALSE_INPUTS = ["false", "False", "no", "NO", "off", "Off", "0", "f", "F", "n", "N", " no", False, 0]


@pytest.mark.parametrize("tag", sorted(BOOLEAN_TAGS))
@pytest.mark.parametrize("value", TRUE_INPUTS)
def test_boolean_tags_true(tag: str, value: object) -> None:
    assert tags({tag: value}) == {tag: "true"}


@pytest.mark.parametrize("tag", sorted(BOOLEAN_TAGS))
@pytest.mark.parametrize("value", FALSE_INPUTS)
def test_boolean_tags_false(tag: str, value: object) -> None:
    assert tags({tag: value}) == {tag: "false"}


@pytest.mark.parametrize(
    ("value", "shown"),
    [("maybe", '"maybe"'), ("", '""'), ("2", '"2"'), (2, "2"), (1.0, "1.0"), ("truee", '"truee"')],
)
def test_boolean_tags_parse_strictly(value: object, shown: str) -> None:
    with pytest.raises(DeviceSpecError) as info:
        DeviceSpec.parse({"trusted": value}, 5)
    assert str(info.value).startswith(f"device_spec[5]: property trusted ({shown}) is not a boolean")


def test_boolean_tag_list_is_refused() -> None:
    with pytest.raises(DeviceSpecError, match=r"property managed \(\["):
        DeviceSpec.parse({"managed": ["yes"]}, 0)


def test_the_five_boolean_tags() -> None:
    assert frozenset({"trusted", "remote_managed", "managed", "live_migratable", "one_time_use"}) == (BOOLEAN_TAGS)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("nvidia-t4", "CUSTOM_NVIDIA_T4"),
        ("CUSTOM_QAT", "CUSTOM_QAT"),
        ("custom_qat", "CUSTOM_QAT"),
        ("custom_a-b", "CUSTOM_A_B"),
        ("pci_device", "PCI_DEVICE"),
        ("PCI_DEVICE", "PCI_DEVICE"),
        ("sriov_net_vf", "SRIOV_NET_VF"),
        ("VGPU", "VGPU"),
        ("pgpu", "PGPU"),
        ("fpga", "FPGA"),
        ("my gpu  (fast)", "CUSTOM_MY_GPU_FAST_"),
        (" a.b ", "CUSTOM_A_B"),
        ("MEMORY_MB", "CUSTOM_MEMORY_MB"),
    ],
)
def test_resource_class_normalisation(raw: str, expected: str) -> None:
    assert normalise_resource_class(raw) == expected
    assert tags({"resource_class": raw}) == {"resource_class": expected}


def test_resource_class_number_becomes_custom() -> None:
    assert tags({"resource_class": 42}) == {"resource_class": "CUSTOM_42"}


def test_empty_resource_class_and_traits_are_not_set() -> None:
    assert tags({"resource_class": " ", "traits": " , "}) == {}


def test_resource_class_list_is_refused() -> None:
    with pytest.raises(DeviceSpecError, match=r'property resource_class \(\["a"\]\)'):
        DeviceSpec.parse({"resource_class": ["a"]}, 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HW_GPU_API_VULKAN", "HW_GPU_API_VULKAN"),
        ("hw_gpu_api_vulkan, fast-nic", "HW_GPU_API_VULKAN,CUSTOM_FAST_NIC"),
        ("CUSTOM_A,custom_b,c", "CUSTOM_A,CUSTOM_B,CUSTOM_C"),
        ("compute_managed_pci_device", "COMPUTE_MANAGED_PCI_DEVICE"),
        ("STORAGE_DISK_SSD,MISC_SHARES_VIA_AGGREGATE", "STORAGE_DISK_SSD,MISC_SHARES_VIA_AGGREGATE"),
        ("owner_nova", "OWNER_NOVA"),
        ("a,,a, A ,b", "CUSTOM_A,CUSTOM_B"),
        ("gold.tier", "CUSTOM_GOLD_TIER"),
    ],
)
def test_traits_normalisation(raw: str, expected: str) -> None:
    assert normalise_traits(raw) == expected
    assert tags({"traits": raw}) == {"traits": expected}


def test_non_string_tag_name_is_refused() -> None:
    with pytest.raises(DeviceSpecError, match="property name 1 must be a string"):
        DeviceSpec.parse({1: "x"}, 0)
