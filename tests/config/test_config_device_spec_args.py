"""parse_device_spec_args: the CLI's --device-spec JSON|@FILE values."""

from __future__ import annotations

from pathlib import Path

import pytest

from epa.config import parse_device_spec_args
from epa.errors import ConfigError, DeviceSpecError


def test_json_arguments_in_order() -> None:
    specs = parse_device_spec_args(['{"vendor_id": "8086"}', '[{"vendor_id": "10de"}, {"vendor_id": "1002"}]'])
    assert [s.vendor_id for s in specs] == ["8086", "10de", "1002"]
    assert [s.index for s in specs] == [0, 1, 2]
    assert [s.label for s in specs] == ["--device-spec[0]", "--device-spec[1][0]", "--device-spec[1][1]"]


def test_at_file_holding_a_list(tmp_path: Path) -> None:
    path = tmp_path / "specs.json"
    path.write_text('[\n  {"vendor_id": "8086", "physical_network": "p1"},\n  {"devname": "ens1f0"}\n]\n')
    specs = parse_device_spec_args(['{"vendor_id": "15b3"}', f"@{path}"])
    assert [s.vendor_id for s in specs] == ["15b3", "8086", None]
    assert specs[1].tags == {"physical_network": "p1"}
    assert specs[2].devname == "ens1f0"


def test_at_file_holding_one_object(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text('{"address": "0000:3b:00.0"}')
    (spec,) = parse_device_spec_args([f"@{path}"])
    assert str(spec.address) == "0000:3b:00.0"


def test_bad_json_argument() -> None:
    with pytest.raises(DeviceSpecError) as info:
        parse_device_spec_args(["{vendor_id: 8086}"])
    assert str(info.value).startswith("--device-spec[0]: entry '{vendor_id: 8086}' is not valid JSON")


def test_bad_spec_in_at_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"vendor_id": "8086"}, {"address": "0000:0a:20.0"}]')
    with pytest.raises(DeviceSpecError) as info:
        parse_device_spec_args([f"@{path}"])
    assert str(info.value) == (
        f"--device-spec[0][1]: property slot (20) is greater than the maximum allowable value (1F) (in {path})"
    )


def test_missing_at_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError) as info:
        parse_device_spec_args([f"@{path}"])
    assert str(info.value) == f"--device-spec @{path}: cannot read {path}: No such file or directory"


def test_first_index_continues_after_config_specs() -> None:
    specs = parse_device_spec_args(['{"a": "1"}', '[{"a": "2"}, {"a": "3"}]'], first_index=4)
    assert [s.index for s in specs] == [4, 5, 6]
    assert [s.label for s in specs] == ["--device-spec[0]", "--device-spec[1][0]", "--device-spec[1][1]"]


def test_no_arguments() -> None:
    assert parse_device_spec_args([]) == ()
