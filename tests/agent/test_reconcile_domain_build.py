"""From a server as the API gives it, the simulated NFV host's discovery and its NUMA cells to the domain
spec, the VF settings of its direct ports and the devices the agent detaches itself."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from epa.agent.domain_build import (
    ServerBuildError,
    domain_name,
    domain_type_for,
    plan_server,
    plan_teardown,
    server_view,
    vf_location,
)
from epa.agent.host_facts import read_host_facts
from epa.discovery.sysfs import scan_sysfs
from epa.domain.address import PciAddress
from epa.domain.device_spec import ClassifiedDevice, classify, parse_device_specs
from epa.domain.port import VnicType
from epa.hostnet.vf import VfConfig
from epa.virt import DomainType, HostdevSpec, InterfaceSpec, InvalidDomainSpec, build_domain_xml, parse_domain_devices
from epa.wire.server import ServerOut
from support.guest_numa import guest_node_of

A = PciAddress.parse
SERVER_ID = "0d1e2f00-0000-4000-8000-00000000abcd"
SPECS = [
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet2", "trusted": "yes"}',
    '{"address": "0000:5e:00.0", "physical_network": "physnet3"}',
    '{"vendor_id": "10de", "managed": "no"}',
]


@pytest.fixture
def devices(nfv_sysfs: Path) -> dict[PciAddress, ClassifiedDevice]:
    classified, _ = classify(parse_device_specs(SPECS), scan_sysfs(nfv_sysfs).devices)
    return {c.device.address: c for c in classified}


def server(**over: Any) -> ServerOut:
    """The server as the agent reads it from the API's answer (``server_view``); a device or a port given
    without its other fields gets the API's defaults."""
    body = server_json(**over)
    for i, d in enumerate(body.get("devices") or []):
        d.setdefault("request_index", i)
        d.setdefault("request_label", f"request {i}")
    for p in body.get("ports") or []:
        p.setdefault("trusted", False)
        p.setdefault("vlan", None)
    return server_view(body)


def server_json(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": SERVER_ID,
        "name": "vnf-1",
        "status": "scheduled",
        "status_reason": None,
        "host": "nfv-1",
        "host_nodes": [0],
        "flavor": {"name": "vnf.small", "vcpus": 4, "memory_mb": 2048, "numa_nodes": 1},
        "ports": [
            {"physnet": "physnet2", "vnic_type": "direct", "trusted": True, "vlan": 100, "mac": "fa:16:3e:00:00:01"},
            {"physnet": "physnet2", "vnic_type": "macvtap", "trusted": False, "vlan": None, "mac": "fa:16:3e:00:00:02"},
            {
                "physnet": "physnet3",
                "vnic_type": "direct-physical",
                "trusted": False,
                "vlan": None,
                "mac": "fa:16:3e:00:00:03",
            },
        ],
        "devices": [
            {"address": "0000:3d:01.1", "request_index": 0, "request_label": "qat", "port": None},
            {"address": "0000:3d:01.3", "request_index": 0, "request_label": "qat", "port": None},
            {"address": "0000:18:0a.1", "request_index": 1, "request_label": "port 0", "port": 0},
            {"address": "0000:18:02.2", "request_index": 2, "request_label": "port 1", "port": 1},
            {"address": "0000:5e:00.0", "request_index": 3, "request_label": "port 2", "port": 2},
        ],
        "cells": [{"node": 0, "cpus": 4, "memory_mb": 2048}],
        "domain_uuid": None,
        "domain_state": None,
        "domain_xml": None,
        "created_at": "2026-12-06T04:00:00+00:00",
        "updated_at": "2026-12-06T04:00:00+00:00",
    }
    body.update(over)
    return body


def test_the_plan_has_every_claimed_device_in_its_place(nfv_sysfs: Path, devices: dict[PciAddress, Any]) -> None:
    cells = read_host_facts(nfv_sysfs).numa_cells
    plan = plan_server(server(), devices, cells, DomainType.TEST)
    spec = plan.spec
    assert spec.name == "epa-vnf-1-0d1e2f00" == domain_name(server())
    assert spec.uuid == uuid.UUID(SERVER_ID) and spec.domain_type is DomainType.TEST
    assert (spec.vcpus, spec.memory_mb, spec.host_nodes) == (4, 2048, (0,))
    assert spec.host_cpus[0] == cells[0].cpus and not spec.guest_numa
    # Each passed-through device carries its host NUMA node (a multi-node guest places it by that).
    assert spec.hostdevs == (HostdevSpec(A("0000:3d:01.1"), numa_node=0), HostdevSpec(A("0000:3d:01.3"), numa_node=0))
    assert spec.interfaces == (
        InterfaceSpec(VnicType.DIRECT, A("0000:18:0a.1"), "fa:16:3e:00:00:01", 100, numa_node=0),
        InterfaceSpec(VnicType.MACVTAP, A("0000:18:02.2"), "fa:16:3e:00:00:02", netdev="ens785f0v2"),
        InterfaceSpec(VnicType.DIRECT_PHYSICAL, A("0000:5e:00.0"), numa_node=1),
    )
    assert spec.metadata is not None and (spec.metadata.server_id, spec.metadata.flavor) == (SERVER_ID, "vnf.small")
    # The trusted direct port's VF: index 1 of ens785f1 (virtfn1), trusted, spoof checking off.
    assert plan.vf_configs == (VfConfig("ens785f1", 1, "fa:16:3e:00:00:01", 100, trusted=True, spoofchk=False),)
    assert plan.detach == ()
    assert plan.netdevs == {"ens785f0v2"}
    assert plan.addresses == {A(d.address) for d in server().devices}
    assert parse_domain_devices(build_domain_xml(spec)) == plan.addresses - {A("0000:18:02.2")}


def test_an_untrusted_direct_port_without_vlan_clears_the_vlan_and_keeps_spoof_checking(
    devices: dict[PciAddress, Any],
) -> None:
    ports = [{"physnet": "physnet2", "vnic_type": "direct", "mac": "fa:16:3e:00:00:09"}]
    body = server(ports=ports, devices=[{"address": "0000:18:02.0", "port": 0}], host_nodes=[])
    plan = plan_server(body, devices, (), DomainType.KVM)
    assert plan.vf_configs == (VfConfig("ens785f0", 0, "fa:16:3e:00:00:09", 0, trusted=False, spoofchk=True),)
    assert plan.spec.interfaces[0].vlan is None and plan.spec.domain_type is DomainType.KVM


def test_a_device_tagged_managed_no_is_detached_by_the_agent(devices: dict[PciAddress, Any]) -> None:
    body = server(ports=[], devices=[{"address": "0000:af:00.0", "port": None}], host_nodes=[])
    plan = plan_server(body, devices, (), DomainType.TEST)
    assert plan.detach == (A("0000:af:00.0"),)
    assert plan.spec.hostdevs == (HostdevSpec(A("0000:af:00.0"), managed=False, numa_node=1),)
    assert 'managed="no"' in build_domain_xml(plan.spec)
    teardown, warnings = plan_teardown(body, devices)
    assert teardown.reattach == (A("0000:af:00.0"),) and teardown.vf_resets == () and warnings == ()


def test_two_host_nodes_give_the_guest_two_cells(nfv_sysfs: Path, devices: dict[PciAddress, Any]) -> None:
    body = server(
        host_nodes=[1, 0],
        cells=[{"node": 0, "cpus": 2, "memory_mb": 1024}, {"node": 1, "cpus": 2, "memory_mb": 1024}],
        flavor={"name": "wide", "vcpus": 4, "memory_mb": 2048, "numa_nodes": 2},
        ports=[],
        devices=[],
    )
    spec = plan_server(body, devices, read_host_facts(nfv_sysfs).numa_cells, DomainType.TEST).spec
    assert spec.host_nodes == (1, 0) and spec.guest_numa
    assert dict(spec.cpus_by_node) == {0: 2, 1: 2} and spec.vcpu_nodes() == (1, 1, 0, 0)


def test_a_two_node_guest_gets_each_device_under_the_expander_of_its_guest_node(
    nfv_sysfs: Path, devices: dict[PciAddress, Any]
) -> None:
    body = server(
        host_nodes=[1, 0],
        cells=[{"node": 0, "cpus": 2, "memory_mb": 1024}, {"node": 1, "cpus": 2, "memory_mb": 1024}],
        flavor={"name": "wide", "vcpus": 4, "memory_mb": 2048, "numa_nodes": 2},
        ports=[],
        devices=[
            {"address": "0000:3d:01.1", "request_index": 0, "request_label": "qat", "port": None},
            {"address": "0000:af:00.0", "request_index": 1, "request_label": "t4", "port": None},
        ],
    )
    xml = build_domain_xml(plan_server(body, devices, read_host_facts(nfv_sysfs).numa_cells, DomainType.TEST).spec)
    # Host node 1 is guest node 0: the T4 (host node 1) goes under guest node 0's expander, the QAT VF
    # (host node 0) under guest node 1's.
    assert guest_node_of(xml) == {A("0000:af:00.0"): 0, A("0000:3d:01.1"): 1}


def test_no_host_nodes_pins_nothing(devices: dict[PciAddress, Any]) -> None:
    spec = plan_server(server(host_nodes=[], cells=[], ports=[], devices=[]), devices, (), DomainType.TEST).spec
    assert spec.host_nodes == () and dict(spec.host_cpus) == {}


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"devices": [{"address": "0000:99:00.0", "port": None}], "ports": []}, "0000:99:00.0 is not on this host"),
        ({"devices": [{"address": "0000:af:00.0", "port": 0}]}, "0000:af:00.0 is not a VF of a PF on this host"),
        ({"devices": [{"address": "0000:3d:01.1", "port": 0}]}, "PF 0000:3d:00.0 of VF 0000:3d:01.1 has no network"),
        ({"devices": [{"address": "0000:18:0a.1", "port": 7}]}, "backs port 7, which does not exist"),
        ({"devices": [{"address": "0000:18:0a.2", "port": 1}]}, "macvtap port 1 needs a netdev on VF 0000:18:0a.2"),
        ({"devices": [{"address": "nonsense", "port": None}]}, "devices[0]: PCI address 'nonsense'"),
        ({"id": "not-a-uuid"}, "id ('not-a-uuid') is not a UUID"),
        ({"flavor": None}, "server 'vnf-1' (0d1e2f00-0000-4000-8000-00000000abcd): flavor (None): "),
        (
            {"ports": [{"physnet": "p", "vnic_type": "wired", "mac": "fa:16:3e:00:00:01"}]},
            "ports.0.vnic_type ('wired')",
        ),
        ({"host_nodes": [3]}, "host NUMA node 3 has no CPUs on this host"),
    ],
)
def test_what_does_not_fit_is_named(
    nfv_sysfs: Path, devices: dict[PciAddress, Any], over: dict[str, Any], message: str
) -> None:
    with pytest.raises(ServerBuildError, match=re.escape(message)):
        plan_server(server(**over), devices, read_host_facts(nfv_sysfs).numa_cells, DomainType.TEST)


def test_a_split_that_does_not_add_up_is_the_spec_s_error(nfv_sysfs: Path, devices: dict[PciAddress, Any]) -> None:
    with pytest.raises(InvalidDomainSpec, match="adds up to 3, not 4"):
        plan_server(
            server(cells=[{"node": 0, "cpus": 3, "memory_mb": 2048}]),
            devices,
            read_host_facts(nfv_sysfs).numa_cells,
            DomainType.TEST,
        )


def test_teardown_resets_direct_vfs_and_goes_on_past_vanished_devices(devices: dict[PciAddress, Any]) -> None:
    devices_json = server_json()["devices"]
    body = server(devices=[*devices_json, {"address": "0000:99:00.0", "port": None}])
    teardown, warnings = plan_teardown(body, devices)
    assert teardown.vf_resets == ((A("0000:18:0a.1"), VfConfig.reset("ens785f1", 1)),)
    assert teardown.reattach == ()
    assert warnings == ("server 'vnf-1' (0d1e2f00-0000-4000-8000-00000000abcd): device 0000:99:00.0 is no longer "
                        "on this host; nothing to give back",)  # fmt: skip


def test_vf_index_is_the_place_among_the_pf_s_virtfn_links(devices: dict[PciAddress, Any]) -> None:
    assert vf_location(devices, A("0000:18:02.0")) == ("ens785f0", 0)
    assert vf_location(devices, A("0000:18:0a.7")) == ("ens785f1", 7)
    assert vf_location(devices, A("0000:5e:00.3")) == ("enp94s0f0np0", 1)
    assert domain_type_for("test:///tmp/node.xml") is DomainType.TEST
    assert domain_type_for("qemu:///system") is DomainType.KVM
