"""load_config on EPA's TOML format, and how the format is chosen."""

from __future__ import annotations

from pathlib import Path

import pytest

from epa.config import load_config
from epa.errors import ConfigError

EPA_TOML = """\
[pci]
device_spec = [
    { vendor_id = "8086", product_id = "154c", physical_network = "physnet1", trusted = true },
    '{"address": "0000:3b:00.0", "remote_managed": "yes"}',
    '[{"vendor_id": "10de"}, {"vendor_id": "1002"}]',
    { address = { bus = "af", function = "[0-3]" }, numa = 1 },
]
alias = [
    { name = "qat", vendor_id = "8086", product_id = "37c9", device_type = "type-VF" },
    '{"name": "t4", "vendor_id": "10de", "product_id": "1eb8"}',
]

[server]
listen = "0.0.0.0:8774"
"""


def write(tmp_path: Path, text: str, name: str = "epa.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_inline_tables_and_json_strings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, EPA_TOML))
    assert config.format == "toml"
    specs = config.device_specs
    assert [s.label for s in specs] == [
        "device_spec[0]",
        "device_spec[1]",
        "device_spec[2][0]",
        "device_spec[2][1]",
        "device_spec[3]",
    ]
    assert specs[0].tags == {"physical_network": "physnet1", "trusted": "true"}
    assert specs[1].tags == {"remote_managed": "true"}
    assert [s.vendor_id for s in specs[2:4]] == ["10de", "1002"]
    assert str(specs[4].address) == '{"domain": ".*", "bus": "af", "slot": ".*", "function": "[0-3]"}'
    assert specs[4].tags == {"numa": "1"}
    assert [a["name"] for a in config.aliases] == ["qat", "t4"]


def test_array_of_tables(tmp_path: Path) -> None:
    text = '[[pci.device_spec]]\nvendor_id = "8086"\n[[pci.device_spec]]\nvendor_id = "15b3"\n'
    config = load_config(write(tmp_path, text))
    assert [s.vendor_id for s in config.device_specs] == ["8086", "15b3"]


def test_single_table_or_string_is_a_list_of_one(tmp_path: Path) -> None:
    text = '[pci]\ndevice_spec = { vendor_id = "8086" }\nalias = \'{"name": "a"}\'\n'
    config = load_config(write(tmp_path, text))
    assert [s.vendor_id for s in config.device_specs] == ["8086"]
    assert [dict(a) for a in config.aliases] == [{"name": "a"}]


def test_toml_without_pci_is_empty(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[server]\nlisten = "x"\n'))
    assert (config.device_specs, config.aliases) == ((), ())


def test_spec_error_names_file_and_entry(tmp_path: Path) -> None:
    path = write(tmp_path, '[pci]\ndevice_spec = [{ vendor_id = "8086" }, { vendor_id = "zz" }]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: device_spec[1]: property vendor_id ('zz') does not parse as a hex number"


def test_toml_tag_list_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[pci]\ndevice_spec = [{ physical_network = ["a", "b"] }]\n')
    with pytest.raises(ConfigError, match=r'device_spec\[0\]: property physical_network \(\["a", "b"\]\)'):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pci\n", "not valid TOML"),
        ("pci = 3\n", "[pci] must be a table, not 3"),
        ("[pci]\ndevice_specs = []\n", "[pci] has an unknown key 'device_specs'"),
        ("[pci]\ndevice_spec = 3\n", "[pci] device_spec = 3 must be an array"),
        ("[pci]\ndevice_spec = [3]\n", "device_spec[0]: entry 3 is neither a JSON object nor a list"),
        ("[pci]\nalias = [3]\n", "alias[0]: entry 3 is neither a JSON object nor a list of objects"),
    ],
)
def test_toml_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_toml_content_in_a_conf_file_is_read_as_toml(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[pci]\ndevice_spec = [{ vendor_id = "8086" }]\n', "epa.conf"))
    assert config.format == "toml"
    assert [s.vendor_id for s in config.device_specs] == ["8086"]


def test_nova_conf_json_is_never_mistaken_for_toml(tmp_path: Path) -> None:
    text = '[pci]\ndevice_spec = [{"vendor_id": "8086"}]\n'
    config = load_config(write(tmp_path, text, "nova.conf"))
    assert config.format == "nova.conf"
    assert [s.vendor_id for s in config.device_specs] == ["8086"]


def test_quoted_single_nova_conf_line_means_the_same_either_way(tmp_path: Path) -> None:
    text = '[pci]\ndevice_spec = \'{"vendor_id": "8086"}\'\n'
    config = load_config(write(tmp_path, text, "nova.conf"))
    assert config.format == "nova.conf"
    assert [s.vendor_id for s in config.device_specs] == ["8086"]


def test_toml_extension_forces_toml(tmp_path: Path) -> None:
    path = write(tmp_path, '[pci]\ndevice_spec = {"vendor_id": "8086"}\n', "nova.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
