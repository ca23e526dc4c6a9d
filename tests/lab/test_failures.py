"""Real failure modes in the lab guest (the same boot as test_scenario.py, after it): the igb driver
refusing a VF setting, VFs held open by another process, vfio-pci that cannot be loaded. Each server goes
``error`` with a reason naming the device and the cause; its devices are released and its VF's settings
undone, as the kernel reports them."""

from __future__ import annotations

from typing import Any

import pytest

from lab.results import LabRun

pytestmark = pytest.mark.slow
FAILURES = ["refused", "busy", "no_vfio"]


def failed(lab: LabRun, name: str) -> dict[str, Any]:
    seen: dict[str, Any] = lab.fact(f"failure.{name}")
    assert seen["server"]["status"] == "error", seen["server"]
    return seen


@pytest.mark.parametrize("name", FAILURES)
def test_the_server_is_in_error_and_its_devices_are_released(lab: LabRun, name: str) -> None:
    seen = failed(lab, name)
    assert seen["claimed"], seen
    assert set(seen["statuses"].values()) == {"available"}, seen["statuses"]


def test_a_driver_refusal_names_the_vf_and_the_errno_and_the_vf_is_reset(lab: LabRun) -> None:
    seen = failed(lab, "refused")
    reason = seen["server"]["status_reason"]
    index = seen["nic_vfs"].index(seen["claimed"][0])
    assert f"VF {index}: setting mac failed: EINVAL" in reason, reason
    vf = next(v for v in seen["vfinfo"] if v["vf"] == index)
    assert vf["address"] == "00:00:00:00:00:00" and not [v for v in vf.get("vlan_list", []) if v["vlan"]]


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
