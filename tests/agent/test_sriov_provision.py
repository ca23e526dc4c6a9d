"""Declarative VF provisioning on the simulated NFV host's /sys tree (real directories and symlinks: the
fake cannot make VFs appear, so what is asserted is what the agent writes and refuses): counts beyond
sriov_totalvfs, changes while a VF is held by a process, an unloaded vfio-pci, a PF nobody has, each a
clear error naming the PF and the value; binding to vfio-pci leaves a held VF alone; a second pass on a
host that matches writes nothing. The real kernel's side is in tests/lab."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from epa.agent.sriov_provision import provision_vfs
from epa.config.sriov import PfSelector, VfDriver, VfProvision, parse_sriov
from epa.errors import ConfigError

PF = "0000:18:00.0"  # ens785f0, an X710 port: 8 VFs on iavf, sriov_totalvfs 64


def devices(sysfs: Path) -> Path:
    return sysfs / "bus" / "pci" / "devices"


def vfs(sysfs: Path, pf: str = PF) -> list[str]:
    links = sorted((devices(sysfs) / pf).glob("virtfn*"), key=lambda p: int(p.name[6:]))
    return [os.readlink(link).rsplit("/", 1)[-1] for link in links]


def hold(proc: Path, sysfs: Path, vf: str) -> None:
    """A process (pid 4242) with the VF's IOMMU group open, as QEMU holds it."""
    group = os.readlink(devices(sysfs) / vf / "iommu_group").rsplit("/", 1)[-1]
    fd = proc / "4242" / "fd"
    fd.mkdir(parents=True)
    (fd / "19").symlink_to(f"/dev/vfio/{group}")


def want(pf: str, num_vfs: int, driver: str = "default") -> VfProvision:
    return VfProvision(PfSelector.parse(pf), num_vfs, VfDriver(driver))


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    (tmp_path / "proc").mkdir()
    return tmp_path / "proc"


def test_more_vfs_than_the_pf_has_is_an_error_naming_the_pf_and_both_numbers(nfv_sysfs: Path, proc: Path) -> None:
    outcome = provision_vfs([want("ens785f0", 65)], nfv_sysfs, proc)
    assert outcome.errors == (f"PF {PF} (ens785f0): num_vfs (65) is more than its sriov_totalvfs (64)",)
    assert (devices(nfv_sysfs) / PF / "sriov_numvfs").read_text().strip() == "8"


def test_changing_the_count_while_a_vf_is_held_is_refused_and_nothing_is_written(nfv_sysfs: Path, proc: Path) -> None:
    held = vfs(nfv_sysfs)[3]
    hold(proc, nfv_sysfs, held)
    outcome = provision_vfs([want(PF, 4)], nfv_sysfs, proc)
    assert outcome.errors == (f"PF {PF}: cannot change num_vfs from 8 to 4 while VFs are in use ({held})",)
    assert (devices(nfv_sysfs) / PF / "sriov_numvfs").read_text().strip() == "8"


def test_a_free_pf_gets_its_new_count_through_zero(nfv_sysfs: Path, proc: Path) -> None:
    outcome = provision_vfs([want("8086:1572", 4)], nfv_sysfs, proc)  # both X710 ports match
    assert outcome.errors == ()
    assert f"PF {PF} (8086:1572): sriov_numvfs 8 -> 4" in outcome.actions
    assert (devices(nfv_sysfs) / PF / "sriov_numvfs").read_text() == "4"
    assert (devices(nfv_sysfs) / "0000:18:00.1" / "sriov_numvfs").read_text() == "4"


def test_vfio_pci_needs_the_driver_loaded(nfv_sysfs: Path, proc: Path) -> None:
    (nfv_sysfs / "bus" / "pci" / "drivers" / "vfio-pci").rename(nfv_sysfs / "vfio-pci-unloaded")
    outcome = provision_vfs([want(PF, 8, "vfio-pci")], nfv_sysfs, proc)
    assert outcome.errors == (f"PF {PF}: driver 'vfio-pci' is not loaded (modprobe vfio-pci)",)


def test_binding_to_vfio_pci_leaves_a_held_vf_and_a_second_pass_writes_nothing(nfv_sysfs: Path, proc: Path) -> None:
    all_vfs = vfs(nfv_sysfs)
    hold(proc, nfv_sysfs, all_vfs[0])
    outcome = provision_vfs([want(PF, 8, "vfio-pci")], nfv_sysfs, proc)
    assert outcome.errors == ()
    assert len(outcome.actions) == 7  # one per free VF; the count already matches
    overrides = {vf: (devices(nfv_sysfs) / vf / "driver_override") for vf in all_vfs}
    assert not overrides[all_vfs[0]].exists()
    assert {overrides[vf].read_text() for vf in all_vfs[1:]} == {"vfio-pci"}
    assert (nfv_sysfs / "bus" / "pci" / "drivers" / "iavf" / "unbind").read_text() == all_vfs[-1]
    assert (nfv_sysfs / "bus" / "pci" / "drivers_probe").read_text() == all_vfs[-1]
    # The second X710 port's VFs are already on vfio-pci: nothing to do there, ever.
    assert provision_vfs([want("0000:18:00.1", 8, "vfio-pci")], nfv_sysfs, proc).actions == ()


def test_a_pf_nobody_has_is_an_error_and_does_not_stop_the_others(nfv_sysfs: Path, proc: Path) -> None:
    outcome = provision_vfs([want("enp9s0", 2), want(PF, 8)], nfv_sysfs, proc)
    assert outcome.errors == ("sriov pf 'enp9s0': no SR-IOV PF on this host matches",)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"pf": "ens785f0", "num_vfs": 4, "driver": "igbvf"}, "driver ('igbvf') must be one of default, vfio-pci"),
        ({"pf": "ens785f0", "num_vfs": -1}, "num_vfs (-1) must be an integer in 0..2048"),
        ({"pf": "ens785f0", "num_vfs": True}, "num_vfs (True) must be an integer in 0..2048"),
        ({"pf": "not a name!", "num_vfs": 1}, "pf ('not a name!') is neither a PCI address, a netdev name nor"),
        ({"pf": "ens785f0", "num_vfs": 1, "vfs": 2}, "unknown key 'vfs'"),
        ({"num_vfs": 1}, "pf (None) must be a string"),
    ],
)
def test_a_bad_sriov_entry_is_a_config_error_naming_the_entry_and_value(entry: object, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^cfg\.toml: sriov\[0\]: ") as caught:
        parse_sriov([entry], "cfg.toml")
    assert message in str(caught.value)


def test_the_agents_toml_config_carries_its_sriov_tables(tmp_path: Path) -> None:
    from epa.config import load_config

    path = tmp_path / "agent.toml"
    path.write_text(
        '[pci]\ndevice_spec = [{ vendor_id = "8086" }]\n\n'
        '[[sriov]]\npf = "0000:18:00.0"\nnum_vfs = 4\ndriver = "vfio-pci"\n\n'
        '[[sriov]]\npf = "8086:1572"\nnum_vfs = 2\n'
    )
    loaded = load_config(path).sriov
    assert [(p.pf.text, p.num_vfs, p.driver) for p in loaded] == [
        ("0000:18:00.0", 4, VfDriver.VFIO_PCI),
        ("8086:1572", 2, VfDriver.DEFAULT),
    ]
    assert loaded[0].pf.address is not None and loaded[1].pf.vendor_product == ("8086", "1572")


def test_default_gives_a_vf_left_by_a_vfio_override_back_and_leaves_the_rest(nfv_sysfs: Path, proc: Path) -> None:
    pf = "0000:18:00.1"  # its VFs are on vfio-pci: left there
    left, bare, *_ = vfs(nfv_sysfs, pf)
    for vf in (left, bare):
        (devices(nfv_sysfs) / vf / "driver").unlink()
    (devices(nfv_sysfs) / left / "driver_override").write_text("vfio-pci")
    outcome = provision_vfs([want(pf, 8)], nfv_sysfs, proc)
    assert outcome.actions == (f"PF {pf}: VF {left} bound to no driver (was no driver)",)
    assert (devices(nfv_sysfs) / left / "driver_override").read_text() == "\n"
    assert not (devices(nfv_sysfs) / bare / "driver_override").exists()
