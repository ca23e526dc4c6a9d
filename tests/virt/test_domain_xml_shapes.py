"""Each shape the domain XML builder writes, checked against libvirt's schema and read back."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from lxml import etree

from epa.domain.address import PciAddress
from epa.domain.host import parse_cpulist
from epa.domain.port import VnicType
from epa.virt import (
    METADATA_NS,
    DiskSpec,
    DomainMetadata,
    DomainSpec,
    HostdevSpec,
    InterfaceSpec,
    InvalidDomainSpec,
    build_domain_xml,
    parse_domain_devices,
)

A = PciAddress.parse
UUID = uuid.UUID("6f1c8a5e-3f7a-4c47-9d52-0b4b7c3e2a11")
HOST_CPUS = {0: (0, 1, 2, 3, 8, 9), 1: (4, 5, 6, 7, 10, 11)}

Validate = Callable[[str], None]


def spec(**over: object) -> DomainSpec:
    base: dict[str, object] = {"name": "srv-1", "uuid": UUID, "domain_type": "kvm", "vcpus": 2, "memory_mb": 1024}
    base.update(over)
    return DomainSpec(**base)  # type: ignore[arg-type]


def pinned(**over: object) -> DomainSpec:
    return spec(host_nodes=(0,), cpus_by_node={0: 2}, memory_by_node={0: 1024}, host_cpus=HOST_CPUS, **over)


def tree(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


def address_of(el: etree._Element) -> PciAddress:
    return PciAddress(*(int(el.get(f, ""), 16) for f in ("domain", "bus", "slot", "function")))


def check(xml: str, virt_xml_validate: Validate) -> etree._Element:
    virt_xml_validate(xml)
    return tree(xml)


def test_minimal_domain_has_no_pinning(virt_xml_validate: Validate) -> None:
    root = check(build_domain_xml(spec()), virt_xml_validate)
    assert root.get("type") == "kvm"
    assert root.findtext("name") == "srv-1" and root.findtext("uuid") == str(UUID)
    assert root.find("memory").text == "1024" and root.find("memory").get("unit") == "MiB"  # type: ignore[union-attr]
    vcpu = root.find("vcpu")
    assert vcpu is not None and vcpu.text == "2" and vcpu.get("cpuset") is None
    assert root.find("cputune") is None and root.find("numatune") is None and root.find("cpu") is None
    assert root.find("devices/memballoon") is None


def test_hostdev_shape(virt_xml_validate: Validate) -> None:
    s = spec(hostdevs=(HostdevSpec(A("0000:3b:02.1")), HostdevSpec(A("0001:af:1f.7"), managed=False)))
    root = check(build_domain_xml(s), virt_xml_validate)
    hostdevs = root.findall("devices/hostdev")
    assert [(h.get("mode"), h.get("type"), h.get("managed")) for h in hostdevs] == [
        ("subsystem", "pci", "yes"),
        ("subsystem", "pci", "no"),
    ]
    first = hostdevs[0].find("source/address")
    assert first is not None and dict(first.attrib) == {
        "domain": "0x0000",
        "bus": "0x3b",
        "slot": "0x02",
        "function": "0x1",
    }
    assert [address_of(h.find("source/address")) for h in hostdevs] == [A("0000:3b:02.1"), A("0001:af:1f.7")]  # type: ignore[arg-type]


@pytest.mark.parametrize("vlan", [None, 42])
def test_direct_port_is_an_interface_of_type_hostdev(vlan: int | None, virt_xml_validate: Validate) -> None:
    port = InterfaceSpec(VnicType.DIRECT, A("0000:18:02.3"), mac="fa:16:3e:00:00:01", vlan=vlan)
    root = check(build_domain_xml(spec(interfaces=(port,))), virt_xml_validate)
    (iface,) = root.findall("devices/interface")
    assert iface.get("type") == "hostdev" and iface.get("managed") == "yes"
    assert iface.find("mac").get("address") == "fa:16:3e:00:00:01"  # type: ignore[union-attr]
    source = iface.find("source/address")
    assert source is not None and source.get("type") == "pci" and address_of(source) == A("0000:18:02.3")
    tags = [t.get("id") for t in iface.findall("vlan/tag")]
    assert tags == ([] if vlan is None else ["42"])
    assert root.find("devices/hostdev") is None
    assert root.find("devices/memballoon").get("model") == "none"  # type: ignore[union-attr]


def test_direct_physical_port_is_a_hostdev_of_the_pf(virt_xml_validate: Validate) -> None:
    port = InterfaceSpec(VnicType.DIRECT_PHYSICAL, A("0000:5e:00.0"), mac="b8:ce:f6:00:00:01", managed=False)
    root = check(build_domain_xml(spec(interfaces=(port,))), virt_xml_validate)
    assert root.find("devices/interface") is None
    (hostdev,) = root.findall("devices/hostdev")
    assert hostdev.get("managed") == "no"
    assert address_of(hostdev.find("source/address")) == A("0000:5e:00.0")  # type: ignore[arg-type]


@pytest.mark.parametrize("vlan", [None, 7])
def test_macvtap_port_is_a_passthrough_direct_interface(vlan: int | None, virt_xml_validate: Validate) -> None:
    port = InterfaceSpec(VnicType.MACVTAP, A("0000:18:0a.1"), mac="fa:16:3e:00:00:02", netdev="ens785f1v1", vlan=vlan)
    root = check(build_domain_xml(spec(interfaces=(port,))), virt_xml_validate)
    (iface,) = root.findall("devices/interface")
    assert iface.get("type") == "direct" and iface.get("managed") is None
    source = iface.find("source")
    assert source is not None and source.attrib == {"dev": "ens785f1v1", "mode": "passthrough"}
    assert iface.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert [t.get("id") for t in iface.findall("vlan/tag")] == ([] if vlan is None else ["7"])
    # The VF itself is not passed through.
    assert parse_domain_devices(build_domain_xml(spec(interfaces=(port,)))) == set()


def test_single_node_pinning(virt_xml_validate: Validate) -> None:
    root = check(build_domain_xml(pinned()), virt_xml_validate)
    vcpu = root.find("vcpu")
    assert vcpu is not None and vcpu.get("placement") == "static" and vcpu.get("cpuset") == "0-3,8-9"
    pins = {int(p.get("vcpu", "")): parse_cpulist(p.get("cpuset", "")) for p in root.iterfind("cputune/vcpupin")}
    assert pins == {0: HOST_CPUS[0], 1: HOST_CPUS[0]}
    memory = root.find("numatune/memory")
    assert memory is not None and memory.attrib == {"mode": "strict", "nodeset": "0"}
    assert root.find("numatune/memnode") is None and root.find("cpu") is None


def test_two_node_guest_numa(virt_xml_validate: Validate) -> None:
    s = spec(
        vcpus=3,
        memory_mb=3072,
        host_nodes=(1, 0),
        cpus_by_node={1: 2, 0: 1},
        memory_by_node={1: 2048, 0: 1024},
        host_cpus=HOST_CPUS,
        guest_numa=True,
    )
    root = check(build_domain_xml(s), virt_xml_validate)
    assert root.find("vcpu").get("cpuset") == "0-11"  # type: ignore[union-attr]
    pins = {int(p.get("vcpu", "")): parse_cpulist(p.get("cpuset", "")) for p in root.iterfind("cputune/vcpupin")}
    assert pins == {0: HOST_CPUS[1], 1: HOST_CPUS[1], 2: HOST_CPUS[0]}
    assert root.find("numatune/memory").get("nodeset") == "0-1"  # type: ignore[union-attr]
    memnodes = [(m.get("cellid"), m.get("mode"), m.get("nodeset")) for m in root.iterfind("numatune/memnode")]
    assert memnodes == [("0", "strict", "1"), ("1", "strict", "0")]
    cpu = root.find("cpu")
    assert cpu is not None and cpu.get("mode") is None  # no host-passthrough
    cells = [dict(c.attrib) for c in cpu.iterfind("numa/cell")]
    assert cells == [
        {"id": "0", "cpus": "0-1", "memory": "2048", "unit": "MiB"},
        {"id": "1", "cpus": "2", "memory": "1024", "unit": "MiB"},
    ]


def test_everything_together(virt_xml_validate: Validate) -> None:
    s = pinned(
        guest_numa=True,
        hostdevs=(HostdevSpec(A("0000:3d:01.0")), HostdevSpec(A("0000:3d:01.1"))),
        interfaces=(
            InterfaceSpec(VnicType.DIRECT, A("0000:18:02.0"), mac="fa:16:3e:00:00:01", vlan=100),
            InterfaceSpec(VnicType.DIRECT_PHYSICAL, A("0000:18:00.1")),
            InterfaceSpec(VnicType.MACVTAP, A("0000:18:0a.0"), mac="fa:16:3e:00:00:03", netdev="ens785f1v0"),
        ),
        disk=DiskSpec("/var/lib/epa/images/srv-1.qcow2"),
        emulator="/usr/bin/qemu-system-x86_64",
        machine="q35",
        metadata=DomainMetadata(server_id="c0ffee00-0000-4000-8000-000000000001", flavor="m1.nfv"),
    )
    xml = build_domain_xml(s)
    root = check(xml, virt_xml_validate)
    assert parse_domain_devices(xml) == {A("0000:3d:01.0"), A("0000:3d:01.1"), A("0000:18:02.0"), A("0000:18:00.1")}
    assert root.findtext("devices/emulator") == "/usr/bin/qemu-system-x86_64"
    assert root.find("os/type").get("machine") == "q35"  # type: ignore[union-attr]
    disk = root.find("devices/disk")
    assert disk is not None and disk.find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    server = root.find(f"metadata/{{{METADATA_NS}}}server")
    assert server is not None and server.get("id") == "c0ffee00-0000-4000-8000-000000000001"
    assert server.find(f"{{{METADATA_NS}}}flavor").get("name") == "m1.nfv"  # type: ignore[union-attr]


def test_the_test_driver_type_has_no_features(virt_xml_validate: Validate) -> None:
    root = check(build_domain_xml(spec(domain_type="test")), virt_xml_validate)
    assert root.get("type") == "test" and root.find("features") is None


def test_names_and_values_are_escaped_not_pasted(virt_xml_validate: Validate) -> None:
    s = spec(metadata=DomainMetadata(server_id="x'\"<&>", flavor="a & b <c>"))
    root = check(build_domain_xml(s), virt_xml_validate)
    server = root.find(f"metadata/{{{METADATA_NS}}}server")
    assert server is not None and server.get("id") == "x'\"<&>"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"name": "a/b"}, "domain name ('a/b')"),
        ({"uuid": "nope"}, "domain uuid ('nope')"),
        ({"domain_type": "xen"}, "domain_type ('xen') must be one of kvm, qemu, test"),
        ({"vcpus": 0}, "vcpus (0) must be in 1..4096"),
        ({"memory_mb": True}, "memory_mb (True) must be an integer"),
        (
            {"host_nodes": (0,), "cpus_by_node": {0: 2}, "memory_by_node": {0: 1000}, "host_cpus": HOST_CPUS},
            "memory_by_node ({0: 1000}) adds up to 1000, not 1024",
        ),
        (
            {"host_nodes": (0,), "cpus_by_node": {1: 2}, "memory_by_node": {0: 1024}, "host_cpus": HOST_CPUS},
            "cpus_by_node nodes ([1]) must be the host_nodes ([0])",
        ),
        (
            {"host_nodes": (2,), "cpus_by_node": {2: 2}, "memory_by_node": {2: 1024}, "host_cpus": HOST_CPUS},
            "host_cpus has no CPUs for host node 2",
        ),
        (
            {
                "host_nodes": (0, 1),
                "cpus_by_node": {0: 2, 1: 0},
                "memory_by_node": {0: 512, 1: 512},
                "host_cpus": HOST_CPUS,
                "guest_numa": True,
            },
            "cpus_by_node[1] (0) must be in 1",
        ),
        ({"guest_numa": True}, "guest_numa needs at least one host node"),
        (
            {"hostdevs": (HostdevSpec(A("0000:3d:01.0")), HostdevSpec(A("0000:3d:01.0")))},
            "device 0000:3d:01.0 is given twice",
        ),
        ({"emulator": "qemu"}, "emulator ('qemu') must be an absolute path"),
    ],
)
def test_bad_spec_names_the_field_and_value(over: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidDomainSpec) as info:
        spec(**over)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vnic_type": "normal"}, "interface vnic_type ('normal') must be one of direct, direct-physical, macvtap"),
        ({"vnic_type": "direct", "mac": "FA:16:3E:00:00:01"}, "mac ('FA:16:3E:00:00:01')"),
        ({"vnic_type": "direct", "vlan": 4095}, "vlan (4095) must be in 1..4094"),
        ({"vnic_type": "direct-physical", "vlan": 5}, "vlan (5) cannot be set on a direct-physical port"),
        ({"vnic_type": "macvtap"}, "netdev (None) must be the VF's interface name"),
        ({"vnic_type": "direct", "netdev": "eth0"}, "netdev ('eth0') applies to macvtap ports only"),
    ],
)
def test_bad_interface_names_the_field_and_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidDomainSpec) as info:
        InterfaceSpec(address=A("0000:18:02.0"), **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_spec_is_immutable() -> None:
    s = pinned()
    with pytest.raises(TypeError):
        s.cpus_by_node[0] = 5  # type: ignore[index]


def test_multicast_mac_is_refused() -> None:
    # Found by the schema property test: libvirt's uniMacAddr wants the group bit clear.
    with pytest.raises(InvalidDomainSpec, match="multicast"):
        InterfaceSpec(VnicType.DIRECT, A("0000:18:02.0"), mac="01:00:5e:00:00:01")


@pytest.mark.parametrize("label", ["", "tab\there", "nul\x00", "bom\ufffe", "x" * 256])
def test_metadata_that_xml_cannot_carry_is_refused(label: str) -> None:
    with pytest.raises(InvalidDomainSpec, match="metadata server_id"):
        DomainMetadata(server_id=label, flavor="m1")
