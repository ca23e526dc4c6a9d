"""load_config on an operator's nova.conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from epa.config import load_config
from epa.errors import ConfigError

NOVA_CONF = """\
[DEFAULT]
debug = true
# a comment with a "device_spec = {" in it

[pci]
; the NICs
device_spec = {"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet1"}
device_spec = [{"vendor_id": "10de", "product_id": "1eb8", "resource_class": "nvidia-t4"},
    {"address": "*:af:00.*", "trusted": "yes"}]
device_spec: '{"devname": "ens1f0", "physical_network": "physnet2"}'
alias = {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"}
alias = [{"name": "t4", "vendor_id": "10de", "product_id": "1eb8"},
         {"name": "t4", "vendor_id": "10de", "product_id": "1eb9"}]
report_in_placement = true

[libvirt]
virt_type = kvm
"""


def write(tmp_path: Path, text: str, name: str = "nova.conf") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_nova_conf_with_repeated_keys_continuations_quotes_and_comments(tmp_path: Path) -> None:
    path = write(tmp_path, NOVA_CONF)
    config = load_config(path)
    assert config.source == path
    assert config.format == "nova.conf"
    assert config.warnings == ()
    specs = config.device_specs
    assert [s.label for s in specs] == [
        "device_spec[0]",
        "device_spec[1][0]",
        "device_spec[1][1]",
        "device_spec[2]",
    ]
    assert specs[0].tags == {"physical_network": "physnet1"}
    assert specs[1].tags == {"resource_class": "CUSTOM_NVIDIA_T4"}
    assert specs[2].tags == {"trusted": "true"}
    assert specs[3].devname == "ens1f0"
    assert [dict(a) for a in config.aliases] == [
        {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"},
        {"name": "t4", "vendor_id": "10de", "product_id": "1eb8"},
        {"name": "t4", "vendor_id": "10de", "product_id": "1eb9"},
    ]


def test_aliases_are_read_only(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, NOVA_CONF))
    with pytest.raises(TypeError):
        config.aliases[0]["name"] = "x"  # type: ignore[index]


def test_no_pci_section_means_nothing_assignable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[DEFAULT]\ndebug = true\n"))
    assert (config.device_specs, config.aliases, config.warnings) == ((), (), ())


def test_deprecated_passthrough_whitelist_is_used_when_alone(tmp_path: Path) -> None:
    path = write(tmp_path, '[pci]\npassthrough_whitelist = {"vendor_id": "8086"}\n')
    config = load_config(path)
    assert [s.vendor_id for s in config.device_specs] == ["8086"]
    assert len(config.warnings) == 1
    assert "[pci] passthrough_whitelist (line 2) is a deprecated name" in config.warnings[0]
    assert "[pci] device_spec" in config.warnings[0]


def test_device_spec_wins_over_passthrough_whitelist_with_a_warning(tmp_path: Path) -> None:
    text = (
        "[pci]\n"
        'passthrough_whitelist = {"vendor_id": "1111"}\n'
        'device_spec = {"vendor_id": "8086"}\n'
        'passthrough_whitelist = {"vendor_id": "2222"}\n'
    )
    config = load_config(write(tmp_path, text))
    assert [s.vendor_id for s in config.device_specs] == ["8086"]
    assert config.warnings == (
        f"{tmp_path / 'nova.conf'}: [pci] passthrough_whitelist (line 2, 4) is ignored because "
        "[pci] device_spec is set",
    )


def test_oldest_default_section_names(tmp_path: Path) -> None:
    text = (
        '[DEFAULT]\npci_passthrough_whitelist = {"vendor_id": "8086"}\npci_alias = {"name": "a", "vendor_id": "8086"}\n'
    )
    config = load_config(write(tmp_path, text))
    assert [s.vendor_id for s in config.device_specs] == ["8086"]
    assert [a["name"] for a in config.aliases] == ["a"]
    assert len(config.warnings) == 2
    assert all("is a deprecated name" in w for w in config.warnings)


def test_spec_error_names_file_line_entry_and_value(tmp_path: Path) -> None:
    text = '[pci]\ndevice_spec = {"vendor_id": "8086"}\n\ndevice_spec = {"address": "0000:0a:00.8"}\n'
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}:4: device_spec[1]: property func (8) is greater than the maximum allowable value (7)"
    )
    assert info.value.__cause__ is not None


def test_invalid_json_names_file_line_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "[pci]\ndevice_spec = {vendor_id: 8086}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:2: device_spec[0]: entry '{{vendor_id: 8086}}' is not valid JSON")


def test_empty_device_spec_line_is_an_error_as_in_nova(tmp_path: Path) -> None:
    path = write(tmp_path, "[pci]\ndevice_spec =\n")
    with pytest.raises(ConfigError, match=r":2: device_spec\[0\]: entry '' is not valid JSON"):
        load_config(path)


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("{name: x}", "alias[1]: entry '{name: x}' is not valid JSON"),
        ("42", "alias[1]: entry '42' is neither a JSON object nor a list of objects"),
        # oslo removes one pair of quotes, so the JSON string "qat" reaches us as qat
        ('"qat"', "alias[1]: entry 'qat' is not valid JSON"),
        ('[{"name": "a"}, 3]', 'alias[1]: entry \'[{"name": "a"}, 3]\' is neither a JSON object'),
    ],
)
def test_bad_alias_names_file_line_and_value(tmp_path: Path, alias: str, message: str) -> None:
    path = write(tmp_path, f'[pci]\nalias = {{"name": "ok"}}\nalias = {alias}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:3: {message}")


def test_ini_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[pci]\nnot an assignment\n")
    with pytest.raises(ConfigError, match=r"nova\.conf:2: expected 'key = value'"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.conf"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"cannot read config {path}: No such file or directory"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "nova.conf"
    path.write_bytes(b"[pci]\ndevice_spec = \xff\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(path)


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "nova.conf"
    path.write_bytes(b'\xef\xbb\xbf[pci]\ndevice_spec = {"vendor_id": "8086"}\n')
    assert [s.vendor_id for s in load_config(path).device_specs] == ["8086"]
