"""Fitting one request on one host: NUMA policies, PF/VF rules, ports, alternatives, reasons in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from epa.domain.address import PciAddress
from epa.domain.alias import AliasSpec, NumaPolicy, parse_aliases
from epa.domain.device import DevType
from epa.domain.flavor import Flavor
from epa.domain.port import Port
from epa.scheduler.fit import Placement, Rejection, fit
from epa.scheduler.host_state import HostState
from epa.scheduler.request import ServerRequest, build_request
from epa.simulate.hosts import nfv_host, no_numa_host
from support.sched import NOW, host_state

A = PciAddress.parse
SPECS = [
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"address": "0000:18:00.0", "physical_network": "physnet1"}',
    '{"address": "0000:18:00.1", "physical_network": "physnet1", "trusted": "true"}',
    '{"vendor_id": "15b3", "physical_network": "physnet2"}',
    '{"vendor_id": "10de"}',
]
ALIASES = parse_aliases(
    [
        {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"},
        {"name": "qat-req", "vendor_id": "8086", "product_id": "37c9", "numa_policy": "required"},
        {"name": "qat-pref", "vendor_id": "8086", "product_id": "37c9", "numa_policy": "preferred"},
        {"name": "qat-sock", "vendor_id": "8086", "product_id": "37c9", "numa_policy": "socket"},
        {"name": "t4", "vendor_id": "10de", "product_id": "1eb8", "numa_policy": "required"},
        [
            {"name": "nicvf", "vendor_id": "8086", "product_id": "154c", "device_type": "type-VF"},
            {"name": "nicvf", "vendor_id": "15b3", "product_id": "1018", "device_type": "type-VF"},
        ],
    ]
)


def request(
    pci: str = "",
    vcpus: int = 4,
    memory_mb: int = 4096,
    numa_nodes: int = 1,
    ports: tuple[Port, ...] = (),
    policy: str | None = None,
) -> ServerRequest:
    body = {
        "name": "f",
        "vcpus": vcpus,
        "memory_mb": memory_mb,
        "pci_passthrough:alias": pci,
        "numa_nodes": numa_nodes,
        "numa_policy": policy,
    }
    return build_request(Flavor.parse(body, ALIASES), ALIASES, ports)


def place(host: HostState, req: ServerRequest) -> Placement:
    result = fit(host, req, now=NOW, alive_seconds=300)
    assert isinstance(result, Placement), result
    return result


def reject(host: HostState, req: ServerRequest) -> str:
    result = fit(host, req, now=NOW, alive_seconds=300)
    assert isinstance(result, Rejection), result
    return result.reason


@pytest.fixture
def nfv(tmp_path: Path) -> HostState:
    return host_state(nfv_host(), tmp_path, SPECS)


def test_devices_come_from_the_guest_numa_node(nfv: HostState) -> None:
    p = place(nfv, request("qat-req:2, t4:1"))
    assert p.nodes == (1,)  # the T4 is only on node 1, so the guest goes there
    qat, t4 = p.devices
    assert t4 == (A("0000:af:00.0"),)
    assert all(nfv.free[a].numa_node == 1 for a in qat)
    assert p.cpus_by_node == {1: 4} and p.memory_by_node == {1: 4096}


def test_required_policy_explains_the_shortage(nfv: HostState) -> None:
    reason = reject(nfv, request("qat-req:40"))
    assert "NUMA node 0 has 32 free 8086:37c9 device, 40 requested (policy required)" in reason
    assert "NUMA node 1 has 16 free 8086:37c9 device, 40 requested (policy required)" in reason


def test_two_guest_nodes_span_the_host(nfv: HostState) -> None:
    p = place(nfv, request("qat-req:40", vcpus=8, memory_mb=8192, numa_nodes=2))
    assert p.nodes == (0, 1)
    assert p.cpus_by_node == {0: 4, 1: 4}
    assert len(p.devices[0]) == 40


def test_preferred_goes_remote_when_it_must(nfv: HostState, tmp_path: Path) -> None:
    # Fill node 1 with other guests' CPUs so the guest must sit on node 0; the T4 is on node 1.
    nfv.cells[1].used_cpus = nfv.cells[1].cpus
    assert "policy required" in reject(nfv, request("t4:1"))
    pref = parse_aliases([{"name": "t4p", "vendor_id": "10de", "numa_policy": "preferred"}])
    req = build_request(
        Flavor.parse({"name": "f", "vcpus": 2, "memory_mb": 1024, "pci_passthrough:alias": "t4p:1"}, pref), pref
    )
    p = place(nfv, req)
    assert (p.nodes, p.devices, p.affinity_misses) == ((0,), ((A("0000:af:00.0"),),), 1)


def test_legacy_accepts_devices_without_numa_information_required_does_not(tmp_path: Path) -> None:
    edge = host_state(no_numa_host(), tmp_path, ['{"vendor_id": "8086", "product_id": "154c"}'])
    p = place(edge, request("nicvf:2"))
    assert len(p.devices[0]) == 2
    strict = parse_aliases([{"name": "vf", "vendor_id": "8086", "product_id": "154c", "numa_policy": "required"}])
    req = build_request(
        Flavor.parse({"name": "f", "vcpus": 1, "memory_mb": 1, "pci_passthrough:alias": "vf:1"}, strict), strict
    )
    assert "NUMA node 0 has 0 free 8086:154c device, 1 requested (policy required)" in reject(edge, req)


def test_socket_policy_allows_the_other_node_of_the_same_socket(tmp_path: Path) -> None:
    cells = {0: (8, 16384, 0), 1: (8, 16384, 0)}  # two nodes, one socket
    host = host_state(nfv_host(), tmp_path, SPECS, cells=cells)
    host.cells[1].used_cpus = 8  # the guest must go to node 0; the T4 is on node 1
    assert "policy required" in reject(host, request("t4:1"))
    p = place(host, request("t4:1", policy="socket"))
    assert p.nodes == (0,) and p.devices == ((A("0000:af:00.0"),),)
    other_socket = host_state(nfv_host(), tmp_path, SPECS, name="two-sockets")
    other_socket.cells[1].used_cpus = other_socket.cells[1].cpus
    assert "socket 0 has 0 free" in reject(other_socket, request("t4:1", policy="socket"))


def test_pf_and_its_own_vf_are_never_both_granted(tmp_path: Path) -> None:
    # Only 18:00.0 and its VFs are on physnet9: a PF and a VF on that network cannot both be had.
    specs = ['{"address": "0000:18:00.0", "physical_network": "physnet9"}']
    host = host_state(nfv_host(), tmp_path, specs)
    ports = (Port("physnet9", "direct-physical"), Port("physnet9", "direct"))
    reason = reject(host, request(ports=ports))
    assert "cannot serve port 0 (direct-physical on physnet9), port 1 (direct on physnet9) together" in reason
    # With both X710 ports on the network, the PF comes from one and the VF from the other.
    specs = [
        '{"vendor_id": "8086", "product_id": "1572", "physical_network": "physnet9"}',
        '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet9"}',
    ]
    host = host_state(nfv_host(), tmp_path, specs, name="two-ports")
    p = place(host, request(ports=ports))
    (pf,), (vf,) = p.devices
    assert host.free[pf].dev_type is DevType.PF
    assert host.free[vf].parent_addr != pf


def test_vfs_are_taken_from_an_already_split_pf(tmp_path: Path) -> None:
    # One VF of QAT 3f:00.0 is in use: further QAT VFs come from that endpoint, keeping 3d:00.0 whole.
    host = host_state(nfv_host(), tmp_path, SPECS, in_use=["0000:3f:01.0"])
    p = place(host, request("qat-req:3"))
    assert {host.free[a].parent_addr for a in p.devices[0]} == {A("0000:3f:00.0")}
    # With nothing in use, all VFs still come from one PF.
    fresh = host_state(nfv_host(), tmp_path, SPECS, name="fresh")
    p = place(fresh, request("qat-req:3"))
    assert len({fresh.free[a].parent_addr for a in p.devices[0]}) == 1


def test_alternatives_fall_back_to_the_other_vendor(tmp_path: Path) -> None:
    specs = ['{"vendor_id": "15b3"}', '{"address": "0000:18:00.0"}']
    host = host_state(nfv_host(), tmp_path, specs)
    p = place(host, request("nicvf:10", policy="preferred"))
    vendors = sorted(host.free[a].vendor_id for a in p.devices[0])
    assert vendors == ["15b3"] * 4 + ["8086"] * 6 or vendors == ["15b3"] * 2 + ["8086"] * 8


def test_ports_need_their_network_netdev_and_trust(nfv: HostState) -> None:
    p = place(nfv, request(ports=(Port("physnet1", trusted=True),)))
    assert nfv.free[p.devices[0][0]].parent_addr == A("0000:18:00.1")  # only that PF's VFs are trusted
    p = place(nfv, request(ports=(Port("physnet1", "macvtap"),)))
    assert nfv.free[p.devices[0][0]].parent_addr == A("0000:18:00.0")  # iavf VFs have netdevs
    p = place(nfv, request(ports=(Port("physnet2", "direct-physical"),)))
    assert p.devices == ((A("0000:5e:00.0"),),)
    assert "0 free VF [physical_network=physnet7], 1 requested (port 0 (direct on physnet7))" in reject(
        nfv, request(ports=(Port("physnet7"),))
    )


def test_remote_managed_devices_only_for_requests_that_ask(tmp_path: Path) -> None:
    specs = ['{"vendor_id": "15b3", "product_id": "1018", "physical_network": "dpu", "remote_managed": "true"}']
    host = host_state(nfv_host(), tmp_path, specs)
    assert "0 free VF [physical_network=dpu]" in reject(host, request(ports=(Port("dpu"),)))
    rm = parse_aliases([{"name": "rm", "vendor_id": "15b3", "remote_managed": "true"}])
    req = build_request(
        Flavor.parse({"name": "f", "vcpus": 1, "memory_mb": 1, "pci_passthrough:alias": "rm:2"}, rm), rm
    )
    assert len(place(host, req).devices[0]) == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h: setattr(h, "enabled", False), "host is disabled"),
        (lambda h: setattr(h, "last_report", NOW - 900), "its agent last reported 900 s ago (limit 300 s)"),
        (lambda h: setattr(h, "last_report", None), "its agent has never reported"),
    ],
)
def test_disabled_and_silent_hosts(nfv: HostState, change: object, reason: str) -> None:
    change(nfv)  # type: ignore[operator]
    assert reject(nfv, request()) == reason


def test_cpu_and_memory_shortages_are_named(nfv: HostState) -> None:
    assert reject(nfv, request(vcpus=100)) == "80 free vCPUs, 100 requested"
    assert reject(nfv, request(memory_mb=10**6)) == "384000 MB free memory, 1000000 MB requested"
    assert reject(nfv, request(vcpus=50)).startswith("NUMA node 0 has 40 free vCPUs")
    assert reject(nfv, request(numa_nodes=3, vcpus=3)) == "2 NUMA node(s), the flavor asks for 3"


def test_alias_spec_without_device_type_matches_any_type() -> None:
    assert AliasSpec.parse({"name": "x"}).device_type is None
    assert NumaPolicy("socket") is NumaPolicy.SOCKET
