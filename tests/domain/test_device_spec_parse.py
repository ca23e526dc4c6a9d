"""Entries: JSON strings or decoded objects / lists, labels, flattening and structural errors."""

from __future__ import annotations

import pytest

from epa.domain.device_spec import DeviceSpec, parse_device_spec_entry, parse_device_specs
from epa.errors import DeviceSpecError


def test_entries_in_order_with_lists_flattened() -> None:
    specs = parse_device_specs(
        [
            '{"vendor_id": "8086"}',
            '[{"vendor_id": "15b3"}, {"vendor_id": "10de"}]',
            {"vendor_id": "1af4"},
            [{"vendor_id": "1002"}],
        ]
    )
    assert [s.vendor_id for s in specs] == ["8086", "15b3", "10de", "1af4", "1002"]
    assert [s.index for s in specs] == [0, 1, 2, 3, 4]
    assert [s.label for s in specs] == [
        "device_spec[0]",
        "device_spec[1][0]",
        "device_spec[1][1]",
        "device_spec[2]",
        "device_spec[3][0]",
    ]


def test_no_entries() -> None:
    assert parse_device_specs([]) == ()


def test_errors_name_the_entry_position() -> None:
    with pytest.raises(DeviceSpecError) as info:
        parse_device_specs(['{"vendor_id": "8086"}', '{"vendor_id": "8086"}', '{"address": ".8"}'])
    assert str(info.value) == ("device_spec[2]: property func (8) is greater than the maximum allowable value (7)")


def test_error_in_a_list_item_names_the_item() -> None:
    with pytest.raises(DeviceSpecError) as info:
        parse_device_specs(['[{"vendor_id": "8086"}, {"product_id": "qq"}]'])
    assert str(info.value).startswith("device_spec[0][1]: property product_id ('qq')")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{vendor_id: 8086}", "device_spec[0]: entry '{vendor_id: 8086}' is not valid JSON"),
        ("", "device_spec[0]: entry '' is not valid JSON"),
        ('{"vendor_id": NaN}', "device_spec[0]: entry '{\"vendor_id\": NaN}' is not valid JSON"),
        ('"8086"', 'device_spec[0]: entry "8086" is neither a JSON object nor a list of objects'),
        ("42", "device_spec[0]: entry 42 is neither a JSON object nor a list of objects"),
        ("null", "device_spec[0]: entry null is neither a JSON object nor a list of objects"),
        ('[{"vendor_id": "8086"}, 5]', "device_spec[0][1]: list item 5 is not a JSON object"),
        ('[["x"]]', 'device_spec[0][0]: list item ["x"] is not a JSON object'),
        (5, "device_spec[0]: entry 5 is neither a JSON object nor a list of objects"),
    ],
)
def test_entry_shape_errors(entry: object, message: str) -> None:
    with pytest.raises(DeviceSpecError) as info:
        parse_device_specs([entry])  # type: ignore[list-item]
    assert str(info.value).startswith(message)


def test_string_items_inside_a_decoded_list_are_refused() -> None:
    with pytest.raises(DeviceSpecError, match=r"device_spec\[0\]\[0\]: list item"):
        parse_device_specs([['{"vendor_id": "8086"}']])


def test_custom_name_and_first_index() -> None:
    specs = parse_device_spec_entry('[{"a": "1"}, {"a": "2"}]', 3, 7, "--device-spec")
    assert [(s.index, s.label) for s in specs] == [(7, "--device-spec[3][0]"), (8, "--device-spec[3][1]")]


def test_parse_accepts_a_json_string_holding_one_object() -> None:
    spec = DeviceSpec.parse('{"vendor_id": "8086", "physical_network": "p1"}', 9)
    assert (spec.index, spec.label, spec.vendor_id, spec.tags) == (
        9,
        "device_spec[9]",
        "8086",
        {"physical_network": "p1"},
    )


def test_parse_refuses_a_list() -> None:
    with pytest.raises(DeviceSpecError, match=r"device_spec\[0\]: entry \[\] is not a JSON object"):
        DeviceSpec.parse([], 0)


def test_devname_and_address_together_are_refused() -> None:
    with pytest.raises(DeviceSpecError) as info:
        DeviceSpec.parse({"devname": "eth0", "address": "0000:0a:00.0"}, 1)
    text = str(info.value)
    assert text.startswith("device_spec[1]: property devname ('eth0') and property address")
    assert '"0000:0a:00.0"' in text


def test_devname_with_empty_address_is_allowed_as_in_nova() -> None:
    spec = DeviceSpec.parse({"devname": "eth0", "address": ""}, 0)
    assert spec.devname == "eth0"
    assert spec.address is None


def test_empty_devname_means_none() -> None:
    assert DeviceSpec.parse({"devname": ""}, 0).devname is None


def test_devname_must_be_a_string() -> None:
    with pytest.raises(DeviceSpecError, match=r"property devname \(5\) must be a string"):
        DeviceSpec.parse({"devname": 5}, 0)


def test_source_keeps_the_entry_for_explanations() -> None:
    spec = DeviceSpec.parse({"vendor_id": "8086", "trusted": "yes"}, 0)
    assert spec.source == '{"vendor_id": "8086", "trusted": "yes"}'
    assert spec.tags == {"trusted": "true"}


def test_specs_are_hashable_values() -> None:
    a = DeviceSpec.parse({"address": {"bus": "0a"}, "x": "1"}, 0)
    b = DeviceSpec.parse({"address": {"bus": "0a"}, "x": "1"}, 0)
    assert a == b
    assert len({a, b}) == 1
