"""PciAddress: parsing, canonical form, ordering, libvirt names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epa.domain.address import PciAddress
from epa.errors import InvalidPciAddress

addresses = st.builds(
    PciAddress,
    domain=st.integers(0, 0xFFFF),
    bus=st.integers(0, 0xFF),
    slot=st.integers(0, 0x1F),
    function=st.integers(0, 7),
)


def test_parses_full_and_short_forms() -> None:
    assert PciAddress.parse("0000:3b:02.1") == PciAddress(0, 0x3B, 2, 1)
    assert PciAddress.parse("3b:02.1") == PciAddress(0, 0x3B, 2, 1)
    assert PciAddress.parse("ABCD:FF:1F.7") == PciAddress(0xABCD, 0xFF, 0x1F, 7)


def test_canonical_form_is_lower_case_and_padded() -> None:
    assert str(PciAddress.parse("ABCD:0A:1f.7")) == "abcd:0a:1f.7"
    assert str(PciAddress(0, 1, 2, 3)) == "0000:01:02.3"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("0000:3b:02", "missing '.function'"),
        ("0000:3b:02.8", "function '8'"),
        ("0000:3b:20.0", "slot '20'"),
        ("0000:3g:02.0", "bus '3g'"),
        ("00000:3b:02.0", "domain '00000'"),
        ("0000:3b:2.0", "slot '2'"),
        ("1:2:3:4.0", "want DDDD:BB:SS.F"),
        ("", "missing '.function'"),
        (" 0000:3b:02.0", "domain ' 0000'"),
        ("0000:3b:02.01", "function '01'"),
    ],
)
def test_rejects_bad_text_naming_the_bad_part(text: str, names: str) -> None:
    with pytest.raises(InvalidPciAddress) as err:
        PciAddress.parse(text)
    assert names in str(err.value)
    assert repr(text) in str(err.value)


def test_rejects_out_of_range_fields() -> None:
    with pytest.raises(InvalidPciAddress, match="function 8"):
        PciAddress(0, 0, 0, 8)
    with pytest.raises(InvalidPciAddress, match="bus 256"):
        PciAddress(0, 256, 0, 0)


@given(addresses)
def test_string_round_trip(addr: PciAddress) -> None:
    assert PciAddress.parse(str(addr)) == addr
    assert PciAddress.parse(str(addr).upper()) == addr


@given(addresses)
def test_libvirt_name_round_trip(addr: PciAddress) -> None:
    assert PciAddress.from_libvirt_name(addr.libvirt_name) == addr


@given(addresses, addresses)
def test_ordering_follows_the_numbers(a: PciAddress, b: PciAddress) -> None:
    key = lambda x: (x.domain, x.bus, x.slot, x.function)  # noqa: E731
    assert (a < b) == (key(a) < key(b))
    assert (str(a) < str(b)) == (a < b)  # canonical strings sort like the addresses


def test_fields_are_nova_shaped() -> None:
    assert PciAddress.parse("0000:0a:00.1").fields == ("0000", "0a", "00", "1")


def test_bad_libvirt_name() -> None:
    with pytest.raises(InvalidPciAddress, match="net_eth0"):
        PciAddress.from_libvirt_name("net_eth0")
