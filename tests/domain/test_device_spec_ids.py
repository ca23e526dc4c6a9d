"""vendor_id / product_id: Nova's hex parsing, wildcards and its exact error words."""

from __future__ import annotations

import pytest

from epa.domain.device_spec import DeviceSpec
from epa.errors import DeviceSpecError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8086", "8086"),
        ("0x8086", "8086"),
        ("0X8086", "8086"),
        ("  15B3 ", "15b3"),
        ("abc", "0abc"),
        ("0", "0000"),
        ("0000FFFF", "ffff"),
        ("*", None),
        (" * ", None),
    ],
)
def test_vendor_and_product_ids_parse_like_nova(raw: str, expected: str | None) -> None:
    spec = DeviceSpec.parse({"vendor_id": raw, "product_id": raw}, 0)
    assert spec.vendor_id == expected
    assert spec.product_id == expected


def test_absent_ids_mean_any() -> None:
    spec = DeviceSpec.parse({}, 0)
    assert spec.vendor_id is None
    assert spec.product_id is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"vendor_id": "zz"}, "device_spec[3]: property vendor_id ('zz') does not parse as a hex number"),
        ({"vendor_id": ""}, "device_spec[3]: property vendor_id ('') does not parse as a hex number"),
        ({"vendor_id": "0x"}, "device_spec[3]: property vendor_id ('0x') does not parse as a hex number"),
        ({"vendor_id": "-1"}, "device_spec[3]: property vendor_id ('-1') does not parse as a hex number"),
        (
            {"vendor_id": "80_86"},
            "device_spec[3]: property vendor_id ('80_86') does not parse as a hex number",
        ),
        ({"vendor_id": "8*"}, "device_spec[3]: property vendor_id ('8*') does not parse as a hex number"),
        (
            {"product_id": "10000"},
            "device_spec[3]: property product_id (10000) is greater than the maximum allowable value (FFFF)",
        ),
        (
            {"vendor_id": "0x1FFFF"},
            "device_spec[3]: property vendor_id (0x1FFFF) is greater than the maximum allowable value (FFFF)",
        ),
        ({"vendor_id": 8086}, "device_spec[3]: property vendor_id (8086) must be a string"),
        ({"product_id": ["10fb"]}, 'device_spec[3]: property product_id (["10fb"]) must be a string'),
    ],
)
def test_bad_ids_are_refused_naming_property_and_value(spec: dict[str, object], message: str) -> None:
    with pytest.raises(DeviceSpecError) as info:
        DeviceSpec.parse(spec, 3)
    assert str(info.value) == message
    assert info.value.code == "invalid_device_spec"


def test_vendor_is_checked_before_product_as_in_nova() -> None:
    with pytest.raises(DeviceSpecError, match="vendor_id"):
        DeviceSpec.parse({"vendor_id": "zz", "product_id": "yy"}, 0)
