"""The address property: glob strings and regex objects, parsing, errors and matching."""

from __future__ import annotations

import pytest

from epa.domain.address import PciAddress
from epa.domain.device_spec import DeviceSpec, GlobAddressSpec, RegexAddressSpec
from epa.errors import DeviceSpecError

A = PciAddress.parse


def glob(text: str) -> GlobAddressSpec:
    spec = DeviceSpec.parse({"address": text}, 0).address
    assert isinstance(spec, GlobAddressSpec)
    return spec


def regex(obj: dict[str, object]) -> RegexAddressSpec:
    spec = DeviceSpec.parse({"address": obj}, 0).address
    assert isinstance(spec, RegexAddressSpec)
    return spec


@pytest.mark.parametrize(
    ("text", "fields", "canonical"),
    [
        ("0000:0a:00.1", (0, 0x0A, 0, 1), "0000:0a:00.1"),
        ("*:0a:00.*", (None, 0x0A, 0, None), "*:0a:00.*"),
        (":00.", (None, None, 0, None), "*:*:00.*"),
        ("0a:00.", (None, 0x0A, 0, None), "*:0a:00.*"),
        ("0a:00", (None, 0x0A, 0, None), "*:0a:00.*"),
        ("00", (None, None, 0, None), "*:*:00.*"),
        (".1", (None, None, None, 1), "*:*:*.1"),
        (" 0000 : 0a : 00 . 1 ", (0, 0x0A, 0, 1), "0000:0a:00.1"),
        ("*:*:*.*", (None, None, None, None), "*:*:*.*"),
        ("FFFF:FF:1F.7", (0xFFFF, 0xFF, 0x1F, 7), "ffff:ff:1f.7"),
        ("0:a:0.0", (0, 0x0A, 0, 0), "0000:0a:00.0"),
        ("0x0000:0x0a:0x00.0x1", (0, 0x0A, 0, 1), "0000:0a:00.1"),
        ("0a:00. ", (None, 0x0A, 0, None), "*:0a:00.*"),
    ],
)
def test_glob_fields(text: str, fields: tuple[int | None, ...], canonical: str) -> None:
    spec = glob(text)
    assert (spec.domain, spec.bus, spec.slot, spec.function) == fields
    assert str(spec) == canonical


def test_glob_without_domain_means_any_domain_as_in_nova() -> None:
    spec = glob("0a:00.1")
    assert spec.match(A("0000:0a:00.1"))
    assert spec.match(A("0001:0a:00.1"))
    assert not spec.match(A("0000:0a:00.2"))
    assert not spec.match(A("0000:0b:00.1"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0000:0a:00.8", "property func (8) is greater than the maximum allowable value (7)"),
        ("0000:0a:20.0", "property slot (20) is greater than the maximum allowable value (1F)"),
        ("0000:100:00.0", "property bus (100) is greater than the maximum allowable value (FF)"),
        ("10000:0a:00.0", "property domain (10000) is greater than the maximum allowable value (FFFF)"),
        ("0000:zz:00.0", "property bus ('zz') does not parse as a hex number"),
        ("0000:0a:0g.0", "property slot ('0g') does not parse as a hex number"),
        ("x:0a:00.0", "property domain ('x') does not parse as a hex number"),
        ("0000:0a:00.x", "property func ('x') does not parse as a hex number"),
        ("0000:0a:00.1.2", "property func ('1.2') does not parse as a hex number"),
        ("0000:0a:00.1*", "property func ('1*') does not parse as a hex number"),
        ("0000:0a:0*.1", "property slot ('0*') does not parse as a hex number"),
        ("0000:0a:00:00.0", "property address ('0000:0a:00:00.0') has an incorrect format"),
    ],
)
def test_glob_errors(text: str, message: str) -> None:
    with pytest.raises(DeviceSpecError) as info:
        DeviceSpec.parse({"address": text}, 2)
    assert str(info.value).startswith("device_spec[2]: ")
    assert message in str(info.value)


def test_glob_function_is_checked_first_as_in_nova() -> None:
    with pytest.raises(DeviceSpecError, match="property func"):
        DeviceSpec.parse({"address": "zz:zz:zz.9"}, 0)


@pytest.mark.parametrize("empty", [None, "", {}])
def test_empty_address_means_any(empty: object) -> None:
    assert DeviceSpec.parse({"address": empty}, 0).address is None


@pytest.mark.parametrize("bad", [5, ["0000:0a:00.0"], True])
def test_address_of_another_type_is_refused(bad: object) -> None:
    with pytest.raises(DeviceSpecError, match=r"property address \(.*\) must be a string"):
        DeviceSpec.parse({"address": bad}, 0)


def test_regex_matches_from_the_start_on_canonical_fields() -> None:
    spec = regex({"domain": ".*", "bus": "02", "slot": "01", "function": "[0-2]"})
    assert spec.match(A("0000:02:01.0"))
    assert spec.match(A("0001:02:01.2"))
    assert not spec.match(A("0000:02:01.3"))
    assert not spec.match(A("0000:03:01.0"))


def test_regex_is_not_anchored_at_the_end_as_in_nova() -> None:
    spec = regex({"bus": "0"})
    assert spec.match(A("0000:0a:00.0"))
    assert spec.match(A("0000:01:00.0"))
    assert not spec.match(A("0000:10:00.0"))


def test_regex_matches_lower_case_fields_only() -> None:
    assert not regex({"bus": "0A"}).match(A("0000:0a:00.0"))
    assert regex({"bus": "0a"}).match(A("0000:0a:00.0"))


def test_regex_missing_keys_mean_any() -> None:
    spec = regex({"function": "1"})
    assert spec.domain.pattern == ".*"
    assert spec.match(A("abcd:ef:1f.1"))
    assert not spec.match(A("abcd:ef:1f.2"))


def test_regex_bad_pattern_names_key_and_pattern() -> None:
    with pytest.raises(DeviceSpecError) as info:
        DeviceSpec.parse({"address": {"slot": "[0-"}}, 4)
    assert str(info.value).startswith("device_spec[4]: property address.slot ('[0-') is not a valid")


def test_regex_unknown_key_is_refused() -> None:
    with pytest.raises(DeviceSpecError) as info:
        DeviceSpec.parse({"address": {"bus": "0a", "func": "1"}}, 0)
    assert "unknown key 'func'" in str(info.value)


def test_regex_value_must_be_a_string() -> None:
    with pytest.raises(DeviceSpecError) as info:
        DeviceSpec.parse({"address": {"bus": 10}}, 0)
    assert "property address.bus (10) must be a string" in str(info.value)


@pytest.mark.parametrize(
    ("address", "single"),
    [
        ("0000:0a:00.1", "0000:0a:00.1"),
        ("0a:00.1", None),
        ("*:0a:00.1", None),
        ("0000:0a:00.*", None),
        ("0000:0a:00", None),
        ({"domain": "0000", "bus": "0a", "slot": "00", "function": "1"}, "0000:0a:00.1"),
        ({"domain": "0000", "bus": "0a", "slot": "00"}, None),
        ({"domain": "0000", "bus": "0a", "slot": "00", "function": "[01]"}, None),
        # hex digits but not the name sysfs uses: Nova's PF lookup finds nothing there
        ({"domain": "0", "bus": "0a", "slot": "00", "function": "1"}, None),
        ({"domain": "0000", "bus": "0A", "slot": "00", "function": "1"}, None),
        ({"domain": "0000", "bus": "0a", "slot": "ff", "function": "1"}, None),
    ],
)
def test_single_address(address: object, single: str | None) -> None:
    spec = DeviceSpec.parse({"address": address}, 0).address
    assert spec is not None
    assert spec.single_address == (A(single) if single else None)


def test_regex_str_shows_all_patterns() -> None:
    assert str(regex({"bus": "0a"})) == '{"domain": ".*", "bus": "0a", "slot": ".*", "function": ".*"}'
