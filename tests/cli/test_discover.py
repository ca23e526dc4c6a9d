"""`epa discover`: JSON and table output, device_spec flags and files, errors without tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from epa.cli.main import main
from epa.simulate.libvirt_node import render_node_xml
from epa.simulate.model import SimHost

REQUIRED_KEYS = {
    "address",
    "vendor_id",
    "product_id",
    "class_code",
    "dev_type",
    "parent_addr",
    "numa_node",
    "iommu_group",
    "driver",
    "netdev",
    "assignable",
    "tags",
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def discover_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, object]]:
    code, out, err = run(capsys, "discover", "--json", *args)
    assert code == 0, err
    return {d["address"]: d for d in json.loads(out)}


def test_json_lists_every_function_with_the_documented_keys(
    capsys: pytest.CaptureFixture[str], nfv: SimHost, nfv_sysfs: Path
) -> None:
    devices = discover_json(capsys, "--sysfs-root", str(nfv_sysfs))
    assert len(devices) == len(nfv.functions)
    for d in devices.values():
        assert set(d) >= REQUIRED_KEYS
        assert re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", str(d["address"]))
        assert re.fullmatch(r"[0-9a-f]{4}", str(d["vendor_id"]))
        assert re.fullmatch(r"[0-9a-f]{6}", str(d["class_code"]))
        assert d["dev_type"] in ("type-PCI", "type-PF", "type-VF")
        assert d["assignable"] is False and d["tags"] == {}
    vf = devices["0000:18:02.0"]
    assert (vf["dev_type"], vf["parent_addr"], vf["driver"], vf["netdev"]) == (
        "type-VF",
        "0000:18:00.0",
        "iavf",
        "ens785f0v0",
    )
    assert devices["0000:3a:00.0"]["class_code"] == "060400"  # bridges are listed too


def test_device_spec_by_ids_tags_qat_vfs(capsys: pytest.CaptureFixture[str], nfv_sysfs: Path) -> None:
    devices = discover_json(
        capsys,
        "--sysfs-root",
        str(nfv_sysfs),
        "--device-spec",
        '{"vendor_id": "8086", "product_id": "37C9", "managed": "no"}',
    )
    assignable = {a for a, d in devices.items() if d["assignable"]}
    assert len(assignable) == 48
    assert all(devices[a]["product_id"] == "37c9" for a in assignable)
    assert devices["0000:3d:01.0"]["tags"] == {"managed": "false"}


def test_pf_address_spec_covers_its_vfs_and_first_match_wins(
    capsys: pytest.CaptureFixture[str], nfv_sysfs: Path
) -> None:
    devices = discover_json(
        capsys,
        "--sysfs-root",
        str(nfv_sysfs),
        "--device-spec",
        '{"address": "0000:18:00.0", "physical_network": "physnet1"}',
        "--device-spec",
        '[{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet2"}]',
    )
    assert devices["0000:18:00.0"]["tags"] == {"physical_network": "physnet1"}
    assert devices["0000:18:02.7"]["tags"] == {"physical_network": "physnet1"}
    assert devices["0000:18:0a.0"]["tags"] == {"physical_network": "physnet2"}
    assert devices["0000:18:00.1"]["assignable"] is False


def test_device_spec_from_file_and_nova_conf(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nfv_sysfs: Path
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text('{"vendor_id": "10de"}')
    nova = tmp_path / "nova.conf"
    nova.write_text(
        "[DEFAULT]\ndebug = true\n\n[pci]\n"
        'device_spec = {"devname": "ens785f1", "physical_network": "physnet3"}\n'
        'device_spec = {"address": {"bus": "5e", "function": "[2-3]"}}\n'
    )
    devices = discover_json(capsys, "--sysfs-root", str(nfv_sysfs), "--config", str(nova), "--device-spec", f"@{spec}")
    assert devices["0000:af:00.0"]["assignable"] is True  # from the @FILE flag
    assert devices["0000:18:0a.3"]["tags"] == {"physical_network": "physnet3"}  # devname of a PF
    assert devices["0000:5e:00.2"]["assignable"] and devices["0000:5e:00.3"]["assignable"]
    assert not devices["0000:5e:00.4"]["assignable"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ('{"address": "0000:18:00.8"}', "property func (8) is greater than the maximum allowable value (7)"),
        ('{"address": "0000:zz:00.0"}', "property bus ('zz') does not parse as a hex number"),
        ('{"vendor_id": "8086"', "--device-spec[0]: entry"),
        ('{"trusted": "maybe"}', "maybe"),
    ],
)
def test_invalid_device_spec_exits_2_without_traceback(
    capsys: pytest.CaptureFixture[str], nfv_sysfs: Path, spec: str, message: str
) -> None:
    code, out, err = run(capsys, "discover", "--sysfs-root", str(nfv_sysfs), "--device-spec", spec)
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err


def test_table_groups_vfs_under_their_pf(capsys: pytest.CaptureFixture[str], nfv_sysfs: Path) -> None:
    code, out, _ = run(
        capsys,
        "discover",
        "--sysfs-root",
        str(nfv_sysfs),
        "--device-spec",
        '{"address": "0000:3d:00.0", "physical_network": "-"}',
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ADDRESS", "VENDOR:PRODUCT", "NAME", "TYPE"]
    pf = next(i for i, line in enumerate(lines) if line.startswith("0000:3d:00.0"))
    vf_lines = lines[pf + 1 : pf + 17]
    assert all(line.startswith("  └ 0000:3d:0") for line in vf_lines)
    assert all(" yes " in line for line in vf_lines)
    assert "86 functions (6 PFs, 68 VFs), 17 assignable" in lines[-1]


def test_libvirt_backend_from_the_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, nfv: SimHost) -> None:
    node = tmp_path / "node.xml"
    node.write_text(render_node_xml(nfv))
    devices = discover_json(capsys, "--libvirt", f"test://{node}")
    assert len(devices) == len(nfv.functions)
    assert devices["0000:3d:01.0"]["parent_addr"] == "0000:3d:00.0"


def test_libvirt_failure_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "discover", "--libvirt", f"test://{tmp_path}/missing.xml")
    assert code == 1
    assert f"test://{tmp_path}/missing.xml" in err
    assert "Traceback" not in err


def test_sysfs_and_libvirt_are_alternatives(capsys: pytest.CaptureFixture[str], nfv_sysfs: Path) -> None:
    code, _, err = run(capsys, "discover", "--sysfs-root", str(nfv_sysfs), "--libvirt", "test:///default")
    assert code == 2
    assert "alternatives" in err


def test_missing_sysfs_root_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "discover", "--sysfs-root", str(tmp_path / "nope"))
    assert code == 1
    assert "cannot list PCI devices" in err


def test_epa_command_runs_as_a_process_on_this_host() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "epa", "discover", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    real = json.loads(proc.stdout)
    assert {d["address"] for d in real} == {p.name for p in Path("/sys/bus/pci/devices").iterdir()}
