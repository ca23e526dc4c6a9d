"""Real failure modes in the lab guest (the same boot as test_scenario.py, after it): a multicast MAC on a
port, VFs held open by another process, vfio-pci that cannot be loaded, and the igb driver itself refusing
a VF setting sent by the agent's netlink code. Each server goes
``error`` with a reason naming the device and the cause; its devices are released and its VF's settings
undone, as the kernel reports them."""

from __future__ import annotations

from typing import Any

import pytest

from lab.results import LabRun

# The first test pays for the session's boot (conftest.BOOT_DEADLINE_S), under pytest-timeout too.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
FAILURES = ["multicast", "busy", "no_vfio"]


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
