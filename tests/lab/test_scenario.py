"""EPA passes real VFs into real QEMU through real VFIO, asserted from the kernel's and QEMU's side in the
lab guest (one boot, tests/lab/guest/scenario.py): a server with an NVMe VF (``numa_policy: required``,
the NVMe is on NUMA node 1) and a ``direct`` port (MAC, VLAN) on an igb VF goes active through a libvirt
daemon (``qemu:///system``) and through the embedded driver (``qemu:///embed``), where it boots an EPA image
(an L2 guest) whose own console shows the VF and the port's MAC; deleting it gives both VFs back to their
host drivers and clears the port's MAC and VLAN."""

from __future__ import annotations

from typing import Any

import pytest

from lab.results import LabRun

# The first test pays for the session's boot (conftest.BOOT_DEADLINE_S), under pytest-timeout too.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]
MAC = "52:54:00:1a:b0:01"
VLAN = 42
HYPERVISORS = ["system", "embed"]


def active(lab: LabRun, where: str) -> dict[str, Any]:
    seen: dict[str, Any] = lab.fact(f"{where}.active")
    server = seen["server"]
    if server["status"] != "active":
        pytest.fail(f"{where}: the server is {server['status']}: {server.get('status_reason')}\n{lab.logs()}")
    return seen


def port_vf(seen: dict[str, Any]) -> tuple[str, int]:
    """The port's VF address and its index on the igb PF."""
    address = next(d["address"] for d in seen["server"]["devices"] if d["port"] == 0)
    return address, seen["nic_vfs"].index(address)


def nvme_vf(seen: dict[str, Any]) -> str:
    return str(next(d["address"] for d in seen["server"]["devices"] if d["port"] is None))


def test_the_inventory_has_the_vfs_with_numa_node_iommu_group_and_driver(lab: LabRun) -> None:
    kernel = lab.fact("vfs")
    reported = {d["address"]: d for d in lab.fact("inventory")}
    assert len(kernel) == 4
    for address, seen in kernel.items():
        device = reported[address]
        assert device["dev_type"] == "type-VF" and device["assignable"] is True
        # the kernel's -1 is "no NUMA node"
        assert device["numa_node"] == (None if seen["numa_node"] < 0 else seen["numa_node"])
        assert device["iommu_group"] == seen["iommu_group"]
        assert device["driver"] == seen["driver"]
    assert {kernel[a]["numa_node"] for a in kernel if kernel[a]["vendor_device"] == "1b36:0010"} == {1}


@pytest.mark.parametrize("where", HYPERVISORS)
def test_the_server_goes_active_with_an_nvme_vf_and_a_port_vf(lab: LabRun, where: str) -> None:
    seen = active(lab, where)
    kinds = sorted(seen["devices"][d["address"]]["vendor_device"] for d in seen["server"]["devices"])
    assert kinds == ["1b36:0010", "8086:10ca"]


@pytest.mark.parametrize("where", HYPERVISORS)
def test_the_host_shows_its_hypervisor_reachable_with_the_domain_type_the_domain_has(lab: LabRun, where: str) -> None:
    seen = active(lab, where)
    hypervisor = seen["host"]["hypervisor"]
    assert hypervisor["reachable"] is True and hypervisor["reason"] is None
    assert hypervisor["uri"].startswith("qemu:///system" if where == "system" else "qemu:///embed")
    kind = hypervisor["domain_type"]
    assert f"<domain type='{kind}'" in seen["live_xml"]
    # qemu (TCG) only with the reason KVM was not used; kvm only when the probe ran a vCPU on it
    assert bool(hypervisor["warnings"]) == (kind == "qemu"), hypervisor


@pytest.mark.parametrize("where", HYPERVISORS)
def test_both_vfs_are_bound_to_vfio_pci(lab: LabRun, where: str) -> None:
    seen = active(lab, where)
    assert {a: d["driver"] for a, d in seen["devices"].items()} == dict.fromkeys(seen["devices"], "vfio-pci")


@pytest.mark.parametrize("where", HYPERVISORS)
def test_the_servers_qemu_holds_each_vfs_iommu_group(lab: LabRun, where: str) -> None:
    seen = active(lab, where)
    assert seen["qemu_pid"] is not None, f"no QEMU process runs {seen['domain']}"
    groups = {f"/dev/vfio/{d['iommu_group']}" for d in seen["devices"].values()}
    assert groups <= set(seen["vfio_fds"]), (groups, seen["vfio_fds"])


@pytest.mark.parametrize("where", HYPERVISORS)
def test_the_port_vf_carries_the_ports_mac_and_vlan(lab: LabRun, where: str) -> None:
    seen = active(lab, where)
    _, index = port_vf(seen)
    vf = next(v for v in seen["vfinfo"] if v["vf"] == index)
    assert vf["address"] == MAC
    assert [v["vlan"] for v in vf.get("vlan_list", [])] == [VLAN]


@pytest.mark.parametrize("where", HYPERVISORS)
def test_the_agent_set_the_trusted_ports_vf_trusted_without_spoof_checking(lab: LabRun, where: str) -> None:
    seen = active(lab, where)
    _, index = port_vf(seen)
    vf = next(v for v in seen["vfinfo"] if v["vf"] == index)
    assert vf["trust"] is True and vf["spoofchk"] is False, vf


@pytest.mark.parametrize("where", HYPERVISORS)
def test_vcpus_and_memory_are_on_the_nvme_vfs_node(lab: LabRun, where: str) -> None:
    seen = active(lab, where)
    node = seen["devices"][nvme_vf(seen)]["numa_node"]
    assert node == 1
    cpus = lab.fact("node_cpus")[str(node)]
    xml = seen["live_xml"]
    assert f"nodeset='{node}'" in xml and "mode='strict'" in xml, xml
    assert f"cpuset='{','.join(map(str, cpus))}'" in xml, xml
    vcpu_threads = [t for t in seen["threads"] if t["comm"].startswith("CPU ")]
    assert vcpu_threads, seen["threads"]
    for thread in vcpu_threads:
        assert thread["cpus"] == cpus and thread["mems"] == [node], thread
    pages = seen["memory_nodes"]
    assert int(pages.get(str(node), 0)) > sum(int(n) for k, n in pages.items() if k != str(node)), pages


@pytest.mark.parametrize("where", HYPERVISORS)
def test_delete_gives_the_vfs_back_to_their_host_drivers_and_clears_mac_and_vlan(lab: LabRun, where: str) -> None:
    seen = active(lab, where)
    gone = lab.fact(f"{where}.deleted")
    before = lab.fact("vfs")
    assert gone["server"]["status"] == "deleted" and gone["qemu_pid"] is None
    assert {a: d["driver"] for a, d in gone["devices"].items()} == {a: before[a]["driver"] for a in gone["devices"]}
    _, index = port_vf(seen)
    vf = next(v for v in gone["vfinfo"] if v["vf"] == index)
    assert vf["address"] == "00:00:00:00:00:00"
    assert [v["vlan"] for v in vf.get("vlan_list", []) if v.get("vlan")] == []
    assert vf["trust"] is False and vf["spoofchk"] is True, vf


@pytest.mark.parametrize("count", [0, 3])
def test_vfs_made_or_removed_behind_the_agents_back_reach_the_inventory_woken_by_uevents(
    lab: LabRun, count: int
) -> None:
    seen = lab.fact(f"rediscovery.{count}")
    assert len(seen["kernel"]) == count and seen["inventory"] == sorted(seen["kernel"])
    log = lab.fact("rediscovery.log")
    # The agent scans every 600 s here: the change came in because a uevent woke it.
    # (the in-guest wait's 300 s deadline is shorter than that period)
    assert "PCI uevents (" in log and "reported" in log.split("PCI uevents (", 1)[1], log[-3000:]


def test_under_embed_the_nvme_vf_is_unmanaged_and_the_agent_bound_it_itself(lab: LabRun) -> None:
    seen = active(lab, "embed")
    nvme = nvme_vf(seen)
    bus, slot_fn = nvme.split(":")[1], nvme.split(":")[2]
    slot, function = slot_fn.split(".")
    xml = seen["live_xml"]
    hostdev = xml.split(f"bus='0x{bus}' slot='0x{slot}' function='0x{function}'")[0].rsplit("<hostdev", 1)[1]
    assert "managed='no'" in hostdev, hostdev
    assert seen["devices"][nvme]["driver"] == "vfio-pci"


def test_the_l2_guest_booted_from_an_epa_image_shows_the_vf_and_the_ports_mac_on_its_own_console(
    lab: LabRun,
) -> None:
    seen = active(lab, "embed")
    lines = lab.fact("embed.console")
    # the igb VF, as the L2 guest's own PCI bus has it, and its netdev (igbvf) with the MAC EPA gave the port
    assert any(line.startswith("EPA pci ") and " 0x8086:0x10ca " in line for line in lines), lines
    assert any(line.startswith("EPA net ") and f" {MAC}" in line for line in lines), lines
    assert seen["server"]["ports"][0]["mac"] == MAC
    assert "<kernel>" in seen["live_xml"], "the domain did not boot the image's kernel"
