"""Real failure modes in the lab guest (the same boot as test_scenario.py, after it): a multicast MAC on a
port, VFs held open by another process, vfio-pci that cannot be loaded, the igb driver itself refusing
a VF setting sent by the agent's netlink code, an IOMMU group that is not viable (two e1000 behind a
PCIe-to-PCI bridge, one on its host driver; libvirt's managed detach and the agent's own), and vfio-pci
refusing a PF that has VFs. Each server goes
``error`` with a reason naming the device and the cause; its devices are released and its VF's settings
undone, as the kernel reports them."""

from __future__ import annotations

from typing import Any

import pytest

from lab.results import LabRun

# The first test pays for the session's boot (conftest.BOOT_DEADLINE_S), under pytest-timeout too.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]
FAILURES = ["multicast", "busy", "no_vfio", "group_managed", "group_unmanaged", "pf_refused"]


def failed(lab: LabRun, name: str) -> dict[str, Any]:
    seen: dict[str, Any] = lab.fact(f"failure.{name}")
    assert seen["server"]["status"] == "error", seen["server"]
    return seen


@pytest.mark.parametrize("name", FAILURES)
def test_the_server_is_in_error_and_its_devices_are_released(lab: LabRun, name: str) -> None:
    seen = failed(lab, name)
    assert seen["claimed"], seen
    assert set(seen["statuses"].values()) == {"available"}, seen["statuses"]


def test_a_multicast_mac_is_refused_naming_the_vf_and_the_vf_keeps_no_setting(lab: LabRun) -> None:
    seen = failed(lab, "multicast")
    reason = seen["server"]["status_reason"]
    assert seen["claimed"][0] in reason and "01:00:5e:00:00:01" in reason and "multicast" in reason, reason
    index = seen["nic_vfs"].index(seen["claimed"][0])
    vf = next(v for v in seen["vfinfo"] if v["vf"] == index)
    assert vf["address"] == "00:00:00:00:00:00" and not [v for v in vf.get("vlan_list", []) if v.get("vlan")]


def test_the_agents_netlink_sets_mac_vlan_trust_and_spoofchk_on_a_real_igb_vf(lab: LabRun) -> None:
    seen = lab.fact("netlink.applied")
    assert seen["done"] == ["mac", "vlan", "trust", "spoofchk"]
    vf = seen["vf"]
    assert vf["address"] == "52:54:00:00:0b:01" and [v.get("vlan") for v in vf["vlan_list"]] == [300]
    assert vf["trust"] is True and vf["spoofchk"] is False
    reset = lab.fact("netlink.reset")
    assert reset["address"] == "00:00:00:00:00:00" and reset["trust"] is False and reset["spoofchk"] is True


def test_a_real_driver_refusal_is_an_error_naming_the_pf_the_vf_the_attribute_and_errno(lab: LabRun) -> None:
    refused = lab.fact("netlink.refused")
    assert refused["type"] == "VfConfigError"
    assert refused["message"].startswith(f"PF {refused['pf']} VF 6: setting mac failed: EINVAL"), refused


def test_a_vf_held_by_another_process_names_the_device_and_busy(lab: LabRun) -> None:
    seen = failed(lab, "busy")
    reason = seen["server"]["status_reason"]
    assert seen["claimed"][0] in reason and "busy" in reason.lower(), reason


def test_vfio_pci_that_cannot_be_loaded_names_the_device_and_the_driver(lab: LabRun) -> None:
    assert lab.fact("failure.vfio_unloaded") is True
    seen = failed(lab, "no_vfio")
    reason = seen["server"]["status_reason"]
    assert seen["claimed"][0] in reason and "vfio" in reason, reason
    assert all(d["driver"] != "vfio-pci" for d in seen["kernel"].values()), seen["kernel"]


@pytest.mark.parametrize("how", ["managed", "unmanaged"])
def test_an_iommu_group_shared_with_a_function_on_its_host_driver_is_not_viable(lab: LabRun, how: str) -> None:
    seen = failed(lab, f"group_{how}")
    passed = seen["claimed"][0]
    group = lab.fact(f"failure.group_{how}.group")
    # the kernel put both e1000 (and the bridge they sit behind) in one group
    e1000 = sorted(a for a, d in group.items() if d["vendor_device"] == "8086:100e")
    assert passed in e1000 and len(e1000) == 2 and len({d["iommu_group"] for d in group.values()}) == 1, group
    other = next(a for a in e1000 if a != passed)
    reason = seen["server"]["status_reason"]
    assert passed in reason and "not viable" in reason, reason
    if how == "unmanaged":  # the agent's own check names the function that makes it so, and its driver
        assert f"{other} in the same group is bound to e1000" in reason, reason
    # both are on their host driver again (or still): nothing was left on vfio-pci
    assert {a: group[a]["driver"] for a in e1000} == dict.fromkeys(e1000, "e1000")


def test_vfio_pci_refusing_a_pf_with_vfs_names_the_pf_and_why_and_gives_it_back(lab: LabRun) -> None:
    seen = failed(lab, "pf_refused")
    pf = seen["claimed"][0]
    reason = seen["server"]["status_reason"]
    assert f"PCI device {pf}: vfio-pci did not take it" in reason and "SR-IOV enabled" in reason, reason
    after = lab.fact("failure.pf_refused.after")
    assert after["pf"]["driver"] == "nvme" and len(after["vfs"]) == 2, after
