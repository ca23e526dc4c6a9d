"""``pci_group`` relations on a simulated NFV host (QAT PFs behind a PCIe switch on node 0, an X710 with
two PFs on node 0, a ConnectX-5 and a T4 on node 1): what the fit grants, and its reasons in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from epa.domain.address import PciAddress
from epa.domain.alias import parse_aliases
from epa.domain.flavor import Flavor, InvalidFlavor
from epa.domain.port import Port
from epa.errors import InvalidInput
from epa.scheduler.fit import Placement, Rejection, fit
from epa.scheduler.host_state import HostState
from epa.scheduler.request import ServerRequest, build_request
from epa.scheduler.search import RESERVE, SPLIT, SWITCHED
from epa.simulate.hosts import nfv_host
from epa.wire.flavor import flavor_out
from support.sched import NOW, host_state

A = PciAddress.parse
SPECS = [
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"address": "0000:18:00.0", "physical_network": "physnet1"}',
    '{"address": "0000:18:00.1", "physical_network": "physnet1"}',
    '{"vendor_id": "15b3", "physical_network": "physnet2"}',
    '{"vendor_id": "10de"}',
]
ALIASES = parse_aliases(
    [
        {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"},
        {"name": "t4", "vendor_id": "10de", "product_id": "1eb8"},
        {"name": "nicvf", "vendor_id": "15b3", "product_id": "1018", "device_type": "type-VF"},
    ]
)
SWITCH = A("0000:3b:00.0")


def flavor(pci: str = "", group: str = "", numa_nodes: int = 1) -> Flavor:
    body = {"name": "f", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": pci, "numa_nodes": numa_nodes}
    return Flavor.parse({**body, "pci_group": group}, ALIASES)


def request(pci: str = "", group: str = "", ports: tuple[Port, ...] = ()) -> ServerRequest:
    return build_request(flavor(pci, group), ALIASES, ports)


def fitted(host: HostState, req: ServerRequest) -> Placement | Rejection:
    return fit(host, req, now=NOW, alive_seconds=300)


@pytest.fixture
def nfv(tmp_path: Path) -> HostState:
    return host_state(nfv_host(), tmp_path, SPECS)


def test_same_switch_puts_both_qat_vfs_behind_the_switch(nfv: HostState) -> None:
    p = fitted(nfv, request("qat:2", "same_switch(qat)"))
    assert isinstance(p, Placement), p
    assert {nfv.free[a].switch for a in p.all_devices} == {SWITCH}


def test_same_root_that_no_root_complex_can_serve_names_the_relation_and_the_nearest(nfv: HostState) -> None:
    r = fitted(nfv, request("qat:1, nicvf:1", "same_root(qat, nicvf)"))
    assert isinstance(r, Rejection)
    assert "pci_group same_root(qat, nicvf)" in r.reason
    assert "no root complex holds all 2 devices (alias qat, alias nicvf)" in r.reason
    assert "nearest: root complex pci0000:" in r.reason and "holds 1" in r.reason


def test_two_direct_ports_share_a_pf_unless_distinct_pf_says_otherwise(nfv: HostState) -> None:
    ports = (Port("physnet1"), Port("physnet1"))
    packed = fitted(nfv, request(ports=ports))
    assert isinstance(packed, Placement), packed
    # Without a relation the second VF comes from the PF the first one split: one whole PF stays free.
    assert len({nfv.free[a].parent_addr for a in packed.all_devices}) == 1
    apart = fitted(nfv, request(ports=ports, group="distinct_pf(port:0, port:1)"))
    assert isinstance(apart, Placement), apart
    assert {nfv.free[a].parent_addr for a in apart.all_devices} == {A("0000:18:00.0"), A("0000:18:00.1")}


def test_same_pf_keeps_ports_on_one_pf(nfv: HostState) -> None:
    p = fitted(nfv, request(ports=(Port("physnet1"), Port("physnet1")), group="same_pf(port:0, port:1)"))
    assert isinstance(p, Placement), p
    assert len({nfv.free[a].parent_addr for a in p.all_devices}) == 1


def test_distinct_pf_over_more_ports_than_pfs_says_how_many_pfs_there_are(nfv: HostState) -> None:
    ports = (Port("physnet1"), Port("physnet1"), Port("physnet1"))
    r = fitted(nfv, request(ports=ports, group="distinct_pf(port:0, port:1, port:2)"))
    assert isinstance(r, Rejection)
    assert "pci_group distinct_pf(port:0, port:1, port:2): 3 devices" in r.reason
    assert "on distinct PFs needed; 2 PFs have a free one" in r.reason


def test_a_switch_with_a_device_in_use_is_preferred_over_a_whole_one(tmp_path: Path) -> None:
    whole = fitted(host_state(nfv_host(), tmp_path / "a", SPECS), request("qat:1"))
    assert isinstance(whole, Placement), whole
    # Every QAT PF is whole: the one on node 1, under no switch, leaves the switch whole too (node 1's
    # free ConnectX-5 PF and T4 are charged as reserved on the node the server takes CPUs from).
    assert whole.nodes == (1,) and whole.cost == SPLIT + 2 * RESERVE
    host = host_state(nfv_host(), tmp_path / "b", SPECS, in_use=["0000:3f:01.0"])
    assert host.busy_switches == {SWITCH}
    p = fitted(host, request("qat:1"))
    assert isinstance(p, Placement), p
    # Now the VF comes from the PF already split, behind the busy switch: no PF or switch newly broken,
    # only the small charge for a device behind a switch that no group asked for.
    assert host.free[p.all_devices[0]].parent_addr == A("0000:3f:00.0")
    assert p.nodes == (0,) and p.cost == SWITCHED + 2 * RESERVE  # and node 0's two X710 PFs


def test_a_port_member_past_the_servers_ports_is_refused() -> None:
    with pytest.raises(
        InvalidInput, match=r"pci_group \('distinct_pf\(port:0, port:2\)'\) names port:2, but the server has 2 port"
    ):
        request(ports=(Port("physnet1"), Port("physnet1")), group="distinct_pf(port:0, port:2)")


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ("same_swich(qat)", "unknown relation 'same_swich'"),
        ("same_switch(t4)", "member 't4' is neither port:N nor an alias the flavor requests (qat)"),
        ("same_switch qat", "'same_switch qat' is not relation(member, member, ...)"),
        ("same_switch(qat, qat)", "a member named twice"),
        ("same_switch(qat,)", "an empty member"),
        ("distinct_pf(port:64)", "'port:64' (ports are numbered 0..63)"),
    ],
)
def test_a_bad_pci_group_names_the_field_and_the_value(group: str, message: str) -> None:
    with pytest.raises(InvalidFlavor) as e:
        flavor("qat:2", group)
    assert f"flavor f: pci_group ({group!r})" in str(e.value)
    assert message in str(e.value)


def test_a_pci_group_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidFlavor, match=r"pci_group \(\[1\]\): must be a string"):
        Flavor.parse({"name": "f", "vcpus": 1, "memory_mb": 1, "pci_group": [1]}, ALIASES)


def test_the_text_is_normalised_and_round_trips() -> None:
    f = flavor("qat:2, nicvf:1", " same_switch( qat ,nicvf ) ;distinct_pf(port:0,port:1)")
    assert f.pci_group == "same_switch(qat, nicvf); distinct_pf(port:0, port:1)"
    assert flavor_out(f).model_dump(by_alias=True)["pci_group"] == f.pci_group
