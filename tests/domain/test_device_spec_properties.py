"""Property tests: an address's own glob or regex spec matches it and only it."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from epa.domain.address import MAX_BUS, MAX_DOMAIN, MAX_FUNCTION, MAX_SLOT, PciAddress
from epa.domain.device_spec import DeviceSpec, GlobAddressSpec, RegexAddressSpec
from epa.errors import DeviceSpecError

addresses = st.builds(
    PciAddress,
    st.integers(0, MAX_DOMAIN),
    st.integers(0, MAX_BUS),
    st.integers(0, MAX_SLOT),
    st.integers(0, MAX_FUNCTION),
)


@given(addresses, st.lists(addresses, max_size=30))
def test_exact_glob_matches_its_address_only(address: PciAddress, others: list[PciAddress]) -> None:
    spec = DeviceSpec.parse({"address": str(address)}, 0).address
    assert isinstance(spec, GlobAddressSpec)
    assert spec.single_address == address
    assert spec.match(address)
    for other in others:
        assert spec.match(other) == (other == address)


@given(addresses, st.lists(addresses, max_size=30))
def test_anchored_regex_of_fields_matches_its_address_only(address: PciAddress, others: list[PciAddress]) -> None:
    fields = dict(zip(("domain", "bus", "slot", "function"), address.fields, strict=True))
    spec = DeviceSpec.parse({"address": {k: f"{v}$" for k, v in fields.items()}}, 0).address
    assert isinstance(spec, RegexAddressSpec)
    assert spec.match(address)
    for other in others:
        assert spec.match(other) == (other == address)


@given(addresses)
def test_plain_regex_of_fields_names_its_address(address: PciAddress) -> None:
    fields = dict(zip(("domain", "bus", "slot", "function"), address.fields, strict=True))
    spec = DeviceSpec.parse({"address": fields}, 0).address
    assert isinstance(spec, RegexAddressSpec)
    assert spec.match(address)
    assert spec.single_address == address


@given(addresses, st.sampled_from(["domain", "bus", "slot", "function"]))
def test_glob_with_one_wildcard_still_matches_and_is_not_single(address: PciAddress, field: str) -> None:
    parts = dict(zip(("domain", "bus", "slot", "function"), address.fields, strict=True))
    parts[field] = "*"
    text = f"{parts['domain']}:{parts['bus']}:{parts['slot']}.{parts['function']}"
    spec = DeviceSpec.parse({"address": text}, 0).address
    assert spec is not None
    assert spec.match(address)
    assert spec.single_address is None


@given(addresses)
def test_glob_str_round_trips(address: PciAddress) -> None:
    spec = GlobAddressSpec.parse(str(address))
    assert GlobAddressSpec.parse(str(spec)) == spec
    assert str(spec) == str(address)


@given(st.text(alphabet="0123456789abcdefABCDEF*:. x", max_size=20))
def test_glob_parser_never_crashes(text: str) -> None:
    # Every input either parses or raises the documented error; never another exception.
    message = ""
    try:
        GlobAddressSpec.parse(text)
    except DeviceSpecError as exc:
        message = str(exc)
    assert message == "" or re.match(r"property (func|domain|bus|slot|address) \(", message)
