"""The inventory commands (`epa host|device|alias|flavor`, `epa agent --once`) against the real API,
served by uvicorn in a thread on a SQLite file: tables, --json, settings, and one-line errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from epa.cli.main import main
from epa.client import ApiClient
from epa.simulate.model import SimHost
from support.served import Served


def epa(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def admin_json(capsys: pytest.CaptureFixture[str], served: Served, *args: str) -> Any:
    code, out, err = epa(capsys, *args, "--json", "--server", served.url, "--token", served.admin)
    assert code == 0, err
    return json.loads(out)


def test_host_story(capsys: pytest.CaptureFixture[str], served: Served, nfv: SimHost, nfv_sysfs: Path) -> None:
    creds = ("--server", served.url, "--token", served.admin)
    created = admin_json(capsys, served, "host", "create", "nfv-1")
    token = created["agent_token"]
    assert created["host"]["name"] == "nfv-1" and created["host"]["generation"] == 0
    code, out, err = epa(capsys, "host", "create", "edge-1", *creds)
    assert code == 0 and out.startswith("created host edge-1\nagent token: ")

    code, _, err = epa(
        capsys, "agent", "--once", "--server", served.url, "--token", token,
        "--host-name", "nfv-1", "--sysfs-root", str(nfv_sysfs), "--procfs-root", str(nfv_sysfs),
        "--device-spec", '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet2"}',
    )  # fmt: skip
    assert code == 0, err
    assert f"reported {len(nfv.functions)} devices (first): generation 0→1" in err

    host = admin_json(capsys, served, "host", "show", "nfv-1")
    assert host["generation"] == 1 and host["device_total"] == len(nfv.functions)
    assert [(c["node"], c["socket"]) for c in host["numa_cells"]] == [(0, 0), (1, 1)]
    code, out, _ = epa(capsys, "host", "show", "nfv-1", *creds)
    assert code == 0 and "generation:" in out and "0-19,40-59" in out
    assert "image cache:   not reported" in out
    with ApiClient(served.url, token) as agent:
        agent.put_images("nfv-1", [{"sha256": "ab" * 32, "size": 3 * 2**20}])
    code, out, _ = epa(capsys, "host", "show", "nfv-1", *creds)
    assert "image cache:   1 parts, 3.0 MiB\n" in out

    hosts = admin_json(capsys, served, "host", "list")
    assert [h["name"] for h in hosts] == ["edge-1", "nfv-1"]
    code, out, _ = epa(capsys, "host", "list", *creds)
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["NAME", "ENABLED"] and lines[2].split()[:3] == ["nfv-1", "yes", "1"]

    assert admin_json(capsys, served, "host", "disable", "nfv-1")["enabled"] is False
    assert admin_json(capsys, served, "host", "enable", "nfv-1")["enabled"] is True
    new_token = admin_json(capsys, served, "host", "token", "nfv-1")["agent_token"]
    assert new_token != token
    code, _, err = epa(capsys, "host", "show", "nfv-1", "--server", served.url, "--token", token)
    assert code == 1 and err.startswith("epa: error: ") and len(err.splitlines()) == 1

    code, out, _ = epa(capsys, "host", "delete", "edge-1", *creds)
    assert (code, out) == (0, "deleted host edge-1\n")
    code, _, err = epa(capsys, "host", "show", "edge-1", *creds)
    assert code == 1 and "edge-1" in err and "Traceback" not in err


def test_device_list_filters_and_tables(
    capsys: pytest.CaptureFixture[str], served: Served, nfv: SimHost, nfv_sysfs: Path
) -> None:
    token = admin_json(capsys, served, "host", "create", "nfv-1")["agent_token"]
    code, _, err = epa(
        capsys, "agent", "--once", "--server", served.url, "--token", token, "--host-name", "nfv-1",
        "--sysfs-root", str(nfv_sysfs), "--device-spec", '{"vendor_id": "8086", "product_id": "37c9"}',
    )  # fmt: skip
    assert code == 0, err
    every = admin_json(capsys, served, "device", "list")
    assert len(every) == len(nfv.functions)
    assert {d["host"] for d in every} == {"nfv-1"} and {d["status"] for d in every} == {"available"}
    qat_vfs = [f for f in nfv.functions if f.device == "37c9"]
    assignable = admin_json(capsys, served, "device", "list", "--assignable")
    assert {d["address"] for d in assignable} == {str(f.address) for f in qat_vfs}
    not_assignable = admin_json(capsys, served, "device", "list", "--not-assignable", "--host", "nfv-1")
    assert len(not_assignable) == len(nfv.functions) - len(qat_vfs)
    vfs = admin_json(capsys, served, "device", "list", "--type", "vf")
    assert {d["dev_type"] for d in vfs} == {"type-VF"}
    assert len(vfs) == sum(1 for f in nfv.functions if f.physfn is not None)
    assert admin_json(capsys, served, "device", "list", "--status", "removed") == []

    code, out, _ = epa(capsys, "device", "list", "--type", "type-PF", "--server", served.url, "--token", served.admin)
    assert code == 0 and out.splitlines()[0].startswith("HOST") and out.rstrip().endswith("devices")
    pfs = sum(1 for f in nfv.functions if f.sriov_totalvfs is not None)
    assert out.rstrip().endswith(f"{pfs} devices")
    one = admin_json(capsys, served, "device", "show", "nfv-1", "0000:3d:01.0")
    assert one["assignable"] is True and one["parent_addr"] == "0000:3d:00.0"
    code, _, err = epa(capsys, "device", "list", "--type", "vfx", "--server", served.url, "--token", served.admin)
    assert code == 2 and "--type ('vfx')" in err


def test_alias_and_flavor_story(capsys: pytest.CaptureFixture[str], served: Served, tmp_path: Path) -> None:
    creds = ("--server", served.url, "--token", served.admin)
    alias_file = tmp_path / "nic.json"
    alias_file.write_text(
        '[{"name": "nic", "vendor_id": "8086", "product_id": "154c", "device_type": "type-VF"},'
        ' {"name": "nic", "vendor_id": "15b3", "product_id": "1018", "device_type": "type-VF"}]'
    )
    qat = admin_json(
        capsys, served, "alias", "create",
        '{"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"}',
    )  # fmt: skip
    assert qat["name"] == "qat"
    nic = admin_json(capsys, served, "alias", "create", f"@{alias_file}")
    assert len(nic["specs"]) == 2
    assert [a["name"] for a in admin_json(capsys, served, "alias", "list")] == ["nic", "qat"]
    code, out, _ = epa(capsys, "alias", "show", "nic", *creds)
    assert code == 0 and "type-VF" in out and "vendor_id=15b3" in out

    flavor = admin_json(
        capsys, served, "flavor", "create", "vnf.small", "--vcpus", "4", "--ram", "8192",
        "--pci", "qat:2, nic:1", "--numa-policy", "preferred", "--disk", "20", "--pci-group", "same_numa(qat,nic)",
    )  # fmt: skip
    assert flavor["pci_requests"] == [{"alias": "qat", "count": 2}, {"alias": "nic", "count": 1}]
    assert flavor["disk_gb"] == 20 and flavor["pci_group"] == "same_numa(qat, nic)"
    code, out, _ = epa(capsys, "flavor", "list", *creds)
    assert code == 0 and "vnf.small" in out and "qat:2, nic:1" in out
    code, out, _ = epa(capsys, "flavor", "show", "vnf.small", *creds)
    assert "qat×2, nic×1" in out and "disk GB:      20" in out and "pci group:    same_numa(qat, nic)" in out

    code, _, err = epa(capsys, "flavor", "create", "bad", "--vcpus", "1", "--ram", "1", "--pci", "gpu:1", *creds)
    assert code == 2 and "gpu" in err and len(err.splitlines()) == 1
    code, _, err = epa(capsys, "alias", "delete", "qat", *creds)
    assert code == 1 and err.startswith("epa: error: ")
    code, _, err = epa(capsys, "alias", "create", "{not json", *creds)
    assert code == 2 and "not valid JSON" in err
    assert epa(capsys, "flavor", "delete", "vnf.small", *creds)[:2] == (0, "deleted flavor vnf.small\n")
    assert epa(capsys, "alias", "delete", "qat", *creds)[:2] == (0, "deleted alias qat\n")


def test_url_and_token_from_the_environment(
    capsys: pytest.CaptureFixture[str], served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPA_URL", served.url)
    monkeypatch.setenv("EPA_TOKEN", served.admin)
    code, out, err = epa(capsys, "host", "list", "--json")
    assert (code, json.loads(out)) == (0, []), err


def test_url_and_token_file_from_the_client_config(
    capsys: pytest.CaptureFixture[str], served: Served, isolated_home: Path
) -> None:
    config = isolated_home / "config" / "epa" / "client.toml"
    config.parent.mkdir(parents=True)
    (config.parent / "token").write_text(served.admin + "\n")
    config.write_text(f'url = "{served.url}"\ntoken_file = "token"\n')
    assert epa(capsys, "host", "list", "--json")[0] == 0
    other = isolated_home / "other.toml"
    other.write_text(f'url = "{served.url}"\npassword = "x"\n')
    code, _, err = epa(capsys, "host", "list", "--client-config", str(other))
    assert code == 2 and "unknown key 'password'" in err
    code, _, err = epa(capsys, "host", "list", "--client-config", str(isolated_home / "missing.toml"))
    assert code == 2 and "missing.toml" in err


def test_the_admin_token_file_of_epa_serve_is_the_default_token(
    capsys: pytest.CaptureFixture[str], served: Served, isolated_home: Path
) -> None:
    code, _, err = epa(capsys, "host", "list", "--server", served.url)
    assert code == 1 and "no API token was given" in err and "admin-token" in err
    token_file = isolated_home / "data" / "epa" / "admin-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(served.admin + "\n")
    assert epa(capsys, "host", "list", "--server", served.url)[0] == 0


def test_an_agent_token_may_not_do_admin_work(capsys: pytest.CaptureFixture[str], served: Served) -> None:
    token = admin_json(capsys, served, "host", "create", "nfv-1")["agent_token"]
    code, _, err = epa(capsys, "host", "list", "--server", served.url, "--token", token)
    assert code == 1 and err.startswith("epa: error: ") and len(err.splitlines()) == 1


def test_an_unreachable_server_is_one_line_naming_it(capsys: pytest.CaptureFixture[str], nfv_sysfs: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        code, _, err = epa(capsys, "device", "list", "--server", url, "--token", "t")
        assert code == 1 and err.startswith(f"epa: error: cannot reach EPA server at {url}/v1/devices")
        code, _, err = epa(capsys, "agent", "--once", "--server", url, "--token", "t", "--sysfs-root", str(nfv_sysfs))
        assert code == 1 and f"cannot reach EPA server at {url}" in err and "Traceback" not in err


def test_agent_reads_devices_from_libvirt_and_numa_cells_from_sys(
    capsys: pytest.CaptureFixture[str], served: Served, nfv: SimHost, tmp_path: Path
) -> None:
    from epa.simulate.libvirt_node import render_node_xml

    token = admin_json(capsys, served, "host", "create", "nfv-1")["agent_token"]
    node = tmp_path / "node.xml"
    node.write_text(render_node_xml(nfv))
    code, _, err = epa(
        capsys, "agent", "--once", "--server", served.url, "--token", token, "--host-name", "nfv-1",
        "--libvirt", f"test://{node}",
    )  # fmt: skip
    assert code == 0, err
    assert "not from libvirt's capabilities" in err
    devices = admin_json(capsys, served, "device", "list", "--host", "nfv-1")
    assert len(devices) == len(nfv.functions)
    assert admin_json(capsys, served, "host", "show", "nfv-1")["numa_cells"]


def test_settings_precedence_is_flag_then_environment_then_config(tmp_path: Path) -> None:
    from epa.cli.client_settings import resolve_settings
    from epa.errors import ConfigError

    config = tmp_path / "client.toml"
    config.write_text('url = "http://config:1"\ntoken = "from-config"\n')
    env = {"EPA_URL": "http://env:2", "EPA_TOKEN": "from-env"}
    both = resolve_settings("http://flag:3", "from-flag", None, config, env)
    assert (both.url, both.token, both.token_source) == ("http://flag:3", "from-flag", "--token")
    from_env = resolve_settings(None, None, None, config, env)
    assert (from_env.url, from_env.token) == ("http://env:2", "from-env")
    from_config = resolve_settings(None, None, None, config, {})
    assert (from_config.url, from_config.token) == ("http://config:1", "from-config")
    nothing = resolve_settings(
        None,
        None,
        None,
        None,
        {},
        default_config=tmp_path / "none.toml",
        default_token_file=tmp_path / "none",
    )
    assert (nothing.url, nothing.token) == ("http://127.0.0.1:8700", None)
    with pytest.raises(ConfigError, match="must start with http"):
        resolve_settings("ftp://x", "t", None, None, {})
    (tmp_path / "empty-token").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_settings(None, None, tmp_path / "empty-token", None, {})
