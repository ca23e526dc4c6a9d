"""A multi-node guest's passed-through devices on the guest node that matches their host node: expander
buses with a NUMA ``<target><node>``, checked against libvirt's schema and read back through the
``test:///`` driver."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from lxml import etree

from epa.domain.address import PciAddress
from epa.domain.port import VnicType
from epa.libvirt_client import LibvirtConnection
from epa.virt import DomainSpec, HostdevSpec, InterfaceSpec, build_domain_xml, parse_domain_devices
from support.guest_numa import guest_node_of

A = PciAddress.parse
HOST_CPUS = {0: (0, 1, 2, 3), 1: (4, 5, 6, 7), 2: (8, 9, 10, 11)}
Validate = Callable[[str], None]
# Host node 1 is the guest's node 0 (host_nodes lists host nodes in guest-cell order).
GPU_NODE1, NVME_VF_NODE1, QAT_NODE0, NIC_VF_NODE0 = (
    A("0000:af:00.0"),
    A("0000:d8:00.1"),
    A("0000:3d:01.0"),
    A("0000:18:02.0"),
)
PF_NODE0, UNKNOWN = A("0000:18:00.1"), A("0000:05:00.0")


def two_node(machine: str | None = "q35", domain_type: str = "kvm", **over: object) -> DomainSpec:
    base: dict[str, object] = {
        "name": "srv-numa",
        "uuid": uuid.uuid5(uuid.NAMESPACE_URL, "srv-numa"),
        "domain_type": domain_type,
        "vcpus": 4,
        "memory_mb": 4096,
        "host_nodes": (1, 0),
        "cpus_by_node": {1: 2, 0: 2},
        "memory_by_node": {1: 2048, 0: 2048},
        "host_cpus": HOST_CPUS,
        "guest_numa": True,
        "machine": machine,
        "hostdevs": (
            HostdevSpec(GPU_NODE1, numa_node=1),
            HostdevSpec(NVME_VF_NODE1, numa_node=1),
            HostdevSpec(QAT_NODE0, numa_node=0),
            HostdevSpec(UNKNOWN),
        ),
        "interfaces": (
            InterfaceSpec(VnicType.DIRECT, NIC_VF_NODE0, mac="fa:16:3e:00:00:01", numa_node=0),
            InterfaceSpec(VnicType.DIRECT_PHYSICAL, PF_NODE0, numa_node=0),
            InterfaceSpec(VnicType.MACVTAP, A("0000:18:0a.0"), netdev="ens785f1v0", numa_node=0),
        ),
    }
    base.update(over)
    return DomainSpec(**base)  # type: ignore[arg-type]


def test_q35_devices_sit_under_the_expander_of_their_guest_node(virt_xml_validate: Validate) -> None:
    xml = build_domain_xml(two_node())
    virt_xml_validate(xml)
    root = etree.fromstring(xml.encode())
    expanders = root.findall("devices/controller[@model='pcie-expander-bus']")
    assert [(e.findtext("target/node"), e.find("target").get("busNr")) for e in expanders] == [
        ("0", "128"),
        ("1", "131"),
    ]  # type: ignore[union-attr]
    assert len(root.findall("devices/controller[@model='pcie-root-port']")) == 5
    assert guest_node_of(xml) == {GPU_NODE1: 0, NVME_VF_NODE1: 0, QAT_NODE0: 1, NIC_VF_NODE0: 1, PF_NODE0: 1}
    # A device of unknown locality and the macvtap port (a virtio NIC) are left where libvirt puts them.
    unknown = next(h for h in root.iterfind("devices/hostdev") if h.find("source/address").get("bus") == "0x05")  # type: ignore[union-attr]
    assert unknown.find("address") is None
    assert root.find("devices/interface[@type='direct']/address") is None


def test_i440fx_gets_pci_expander_buses_with_the_devices_in_their_slots(virt_xml_validate: Validate) -> None:
    xml = build_domain_xml(two_node(machine="pc-i440fx-7.2"))
    virt_xml_validate(xml)
    root = etree.fromstring(xml.encode())
    assert not root.findall("devices/controller[@model='pcie-root-port']")
    assert len(root.findall("devices/controller[@model='pci-expander-bus']")) == 2
    assert guest_node_of(xml) == {GPU_NODE1: 0, NVME_VF_NODE1: 0, QAT_NODE0: 1, NIC_VF_NODE0: 1, PF_NODE0: 1}


@pytest.mark.parametrize(
    "over",
    [
        {"guest_numa": False},  # one guest node: nothing to show
        {"host_nodes": (2, 0), "cpus_by_node": {2: 2, 0: 2}, "memory_by_node": {2: 2048, 0: 2048}},
    ],
    ids=["single-node guest", "devices only on host node 0"],
)
def test_only_guest_nodes_with_local_devices_get_an_expander(
    over: dict[str, object], virt_xml_validate: Validate
) -> None:
    xml = build_domain_xml(two_node(**over))
    virt_xml_validate(xml)
    root = etree.fromstring(xml.encode())
    nodes = [e.findtext("target/node") for e in root.iterfind("devices/controller[@model='pcie-expander-bus']")]
    assert nodes == ([] if over.get("guest_numa") is False else ["1"])


def test_the_test_driver_keeps_the_expanders_and_addresses(
    test_conn: LibvirtConnection, virt_xml_validate: Validate
) -> None:
    spec = two_node(machine=None, domain_type="test")
    xml = build_domain_xml(spec)
    virt_xml_validate(xml)
    test_conn.define_domain(xml)
    test_conn.start_domain(spec.name)
    live = test_conn.domain_xml(spec.name)
    assert guest_node_of(live) == {GPU_NODE1: 0, NVME_VF_NODE1: 0, QAT_NODE0: 1, NIC_VF_NODE0: 1, PF_NODE0: 1}
    assert parse_domain_devices(live) >= {GPU_NODE1, QAT_NODE0, PF_NODE0}
    test_conn.destroy_domain(spec.name)
    test_conn.undefine_domain(spec.name)


def test_a_bad_numa_node_names_the_field_and_value() -> None:
    with pytest.raises(Exception, match=r"hostdev 0000:af:00.0: numa_node \(-1\) must be in 0..4095"):
        HostdevSpec(GPU_NODE1, numa_node=-1)
    with pytest.raises(Exception, match=r"interface 0000:18:02.0: numa_node \('1'\) must be an integer"):
        InterfaceSpec(VnicType.DIRECT, NIC_VF_NODE0, numa_node="1")  # type: ignore[arg-type]
