"""The oslo.config-style INI reader: repeated keys, continuations, quotes, comments, errors."""

from __future__ import annotations

import pytest

from epa.config.oslo_ini import IniValue, parse_ini
from epa.errors import ConfigError


def values(text: str, section: str, key: str) -> list[tuple[str, int]]:
    return [(v.value, v.line) for v in parse_ini(text, "nova.conf")[section][key]]


def test_repeated_keys_keep_every_value_in_order() -> None:
    text = "[pci]\ndevice_spec = a\nalias = x\ndevice_spec = b\n[pci]\ndevice_spec = c\n"
    assert values(text, "pci", "device_spec") == [("a", 2), ("b", 4), ("c", 6)]
    assert values(text, "pci", "alias") == [("x", 3)]


def test_colon_and_equals_separators_first_one_wins() -> None:
    text = '[pci]\nk1: v1\nk2 = {"a": "b"}\nk3: x = y\n'
    data = parse_ini(text, "f")["pci"]
    assert data["k1"] == [IniValue("v1", 2)]
    assert data["k2"] == [IniValue('{"a": "b"}', 3)]
    assert data["k3"] == [IniValue("x = y", 4)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("'{\"a\": 1}'", '{"a": 1}'),
        ('"text"', "text"),
        ("'mixed\"", "'mixed\""),
        ('"', ""),
        ("plain", "plain"),
        ("''", ""),
    ],
)
def test_matching_quotes_are_removed(raw: str, expected: str) -> None:
    assert values(f"[pci]\nk = {raw}\n", "pci", "k") == [(expected, 2)]


def test_continuation_lines_join_with_newlines_until_blank_or_comment() -> None:
    text = (
        "[pci]\n"
        'device_spec = {"vendor_id": "8086",\n'
        '   "product_id": "154c"}\n'
        "\n"
        "alias = {\n"
        '\t"name": "a"}\n'
        "# ends here\n"
        "other = 1\n"
    )
    assert values(text, "pci", "device_spec") == [('{"vendor_id": "8086",\n"product_id": "154c"}', 2)]
    assert values(text, "pci", "alias") == [('{\n"name": "a"}', 5)]
    assert values(text, "pci", "other") == [("1", 8)]


def test_comments_and_no_inline_comments() -> None:
    text = "# top\n; also\n[pci]\n#device_spec = no\nk = v # not a comment\n"
    data = parse_ini(text, "f")
    assert "device_spec" not in data["pci"]
    assert data["pci"]["k"] == [IniValue("v # not a comment", 5)]


def test_section_names_are_case_insensitive_except_default() -> None:
    data = parse_ini("[PCI]\na = 1\n[DEFAULT]\nb = 2\n[Default]\nc = 3\n", "f")
    assert data["pci"]["a"][0].value == "1"
    assert data["DEFAULT"]["b"][0].value == "2"
    assert data["default"]["c"][0].value == "3"


def test_empty_value_is_kept() -> None:
    assert values("[pci]\ndevice_spec =\n", "pci", "device_spec") == [("", 2)]


def test_trailing_whitespace_and_crlf() -> None:
    assert values("[pci]\r\nk = v   \r\n", "pci", "k") == [("v", 2)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  indented = 1\n", "nova.conf:1: continuation line without a value to continue: 'indented = 1'"),
        ("[pci]\n\n  stray\n", "nova.conf:3: continuation line without a value to continue: 'stray'"),
        ("[pci\n", "nova.conf:1: section header without a closing ']': '[pci'"),
        ("[]\n", "nova.conf:1: section header without a name: '[]'"),
        ("[pci]\njust words\n", "nova.conf:2: expected 'key = value' or 'key: value': 'just words'"),
        ("[pci]\n= 1\n", "nova.conf:2: the key before the separator is empty: '= 1'"),
        ("k = 1\n", "nova.conf:1: assignment before any [section]: 'k = 1'"),
    ],
)
def test_errors_name_file_line_and_text(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_ini(text, "nova.conf")
    assert str(info.value) == message
