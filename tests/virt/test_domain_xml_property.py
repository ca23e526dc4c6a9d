"""Property: every spec the builder accepts renders to XML that libvirt's schema accepts, and the XML
reads back to the same devices, pinning and node set."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from epa.domain.address import PciAddress
from epa.domain.host import parse_cpulist
from epa.domain.port import VnicType
from epa.virt import (
    DiskSpec,
    DomainMetadata,
    DomainSpec,
    DomainType,
    HostdevSpec,
    InterfaceSpec,
    InvalidDomainSpec,
    build_domain_xml,
    parse_domain_devices,
    parse_domain_metadata,
    parse_macvtap_netdevs,
)

Validate = Callable[[str], None]

addresses = st.builds(
    PciAddress,
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFF),
    st.integers(0, 0x1F),
    st.integers(0, 7),
)
macs = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
    lambda b: ":".join(f"{x:02x}" for x in [b[0] & 0xFE, *b[1:]])
)


def _split(draw: st.DrawFn, total: int, parts: int, floor: int) -> list[int]:
    """``total`` in ``parts`` pieces, each at least ``floor``."""
    cuts = sorted(draw(st.lists(st.integers(0, total - floor * parts), min_size=parts - 1, max_size=parts - 1)))
    bounds = [0, *cuts, total - floor * parts]
    return [bounds[i + 1] - bounds[i] + floor for i in range(parts)]


def _is_label(text: str) -> bool:
    try:
        DomainMetadata(server_id=text, flavor=text)
    except InvalidDomainSpec:
        return False
    return True


# Any text the spec accepts as a label: what it refuses is tested in the shapes tests.
labels = st.text(min_size=1, max_size=20).filter(_is_label)


@st.composite
def interfaces(draw: st.DrawFn, address: PciAddress) -> InterfaceSpec:
    vnic = draw(st.sampled_from(VnicType))
    mac = draw(st.none() | macs)
    if vnic is VnicType.DIRECT_PHYSICAL:
        return InterfaceSpec(vnic, address, mac=mac, managed=draw(st.booleans()))
    vlan = draw(st.none() | st.integers(1, 4094))
    if vnic is VnicType.MACVTAP:
        netdev = draw(st.from_regex(r"[a-z][a-z0-9]{0,14}", fullmatch=True))
        return InterfaceSpec(vnic, address, mac=mac, vlan=vlan, netdev=netdev)
    return InterfaceSpec(vnic, address, mac=mac, vlan=vlan, managed=draw(st.booleans()))


@st.composite
def specs(draw: st.DrawFn) -> DomainSpec:
    host_node_count = draw(st.integers(1, 4))
    per_node = draw(st.integers(1, 8))
    host_cpus = {n: tuple(range(n * per_node, (n + 1) * per_node)) for n in range(host_node_count)}
    nodes = tuple(draw(st.permutations(range(host_node_count)))[: draw(st.integers(0, host_node_count))])
    guest_numa = bool(nodes) and draw(st.booleans())
    floor = 1 if guest_numa else 0
    vcpus = draw(st.integers(max(1, len(nodes) * floor), 16))
    memory = draw(st.integers(max(1, len(nodes) * floor), 65536))
    devices = draw(st.lists(addresses, unique=True, max_size=8))
    n_hostdevs = draw(st.integers(0, len(devices)))
    return DomainSpec(
        name=draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)),
        uuid=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        domain_type=draw(st.sampled_from(DomainType)),
        vcpus=vcpus,
        memory_mb=memory,
        host_nodes=nodes,
        cpus_by_node=dict(zip(nodes, _split(draw, vcpus, len(nodes), floor), strict=True)) if nodes else {},
        memory_by_node=dict(zip(nodes, _split(draw, memory, len(nodes), floor), strict=True)) if nodes else {},
        host_cpus=host_cpus,
        guest_numa=guest_numa,
        hostdevs=tuple(HostdevSpec(a, draw(st.booleans())) for a in devices[:n_hostdevs]),
        interfaces=tuple(draw(interfaces(a)) for a in devices[n_hostdevs:]),
        disk=draw(st.none() | st.builds(DiskSpec, st.just("/var/lib/epa/disk.img"), st.sampled_from(["qcow2", "raw"]))),
        emulator=draw(st.none() | st.just("/usr/bin/qemu-system-x86_64")),
        machine=draw(st.none() | st.sampled_from(["q35", "pc-i440fx-7.2"])),
        metadata=draw(
            st.none()
            | st.builds(
                DomainMetadata,
                st.uuids().map(str),
                labels,
            )
        ),
    )


def _address(el: etree._Element) -> PciAddress:
    return PciAddress(*(int(el.get(f, ""), 16) for f in ("domain", "bus", "slot", "function")))


def _attr(el: etree._Element, path: str, name: str) -> str | None:
    found = el.find(path)
    return None if found is None else found.get(name)


def _managed(flag: bool) -> str:
    return "yes" if flag else "no"


def assert_round_trip(spec: DomainSpec, xml: str) -> None:
    """Read ``xml`` back with plain lxml (not the module under test) and compare it with ``spec``."""
    root = etree.fromstring(xml.encode())
    hostdevs = {
        _address(a): a.getparent().getparent().get("managed") for a in root.iterfind("devices/hostdev/source/address")
    }  # type: ignore[union-attr]
    want_hostdevs = {d.address: _managed(d.managed) for d in spec.hostdevs}
    pfs = [p for p in spec.interfaces if p.vnic_type is VnicType.DIRECT_PHYSICAL]
    want_hostdevs |= {p.address: _managed(p.managed) for p in pfs}
    assert hostdevs == want_hostdevs

    ifaces = {
        _address(i.find("source/address")): (_attr(i, "mac", "address"), _attr(i, "vlan/tag", "id"))  # type: ignore[arg-type]
        for i in root.iterfind("devices/interface[@type='hostdev']")
    }
    vfs = [p for p in spec.interfaces if p.vnic_type is VnicType.DIRECT]
    assert ifaces == {p.address: (p.mac, None if p.vlan is None else str(p.vlan)) for p in vfs}
    assert parse_domain_devices(xml) == set(want_hostdevs) | set(ifaces)
    assert parse_macvtap_netdevs(xml) == {p.netdev for p in spec.interfaces if p.netdev is not None}
    assert parse_domain_metadata(xml) == spec.metadata

    pins = {int(p.get("vcpu", "")): parse_cpulist(p.get("cpuset", "")) for p in root.iterfind("cputune/vcpupin")}
    assert pins == {vcpu: spec.host_cpus[node] for vcpu, node in enumerate(spec.vcpu_nodes())}
    nodeset = _attr(root, "numatune/memory", "nodeset")
    assert set(parse_cpulist(nodeset or "")) == set(spec.host_nodes)

    cells = list(root.iterfind("cpu/numa/cell"))
    if spec.guest_numa:
        assert [c for cell in cells for c in parse_cpulist(cell.get("cpus", ""))] == list(range(spec.vcpus))
        assert sum(int(cell.get("memory", "")) for cell in cells) == spec.memory_mb
        memnodes = [(m.get("cellid"), m.get("nodeset")) for m in root.iterfind("numatune/memnode")]
        assert memnodes == [(str(i), str(n)) for i, n in enumerate(spec.host_nodes)]
    else:
        assert cells == []


@settings(max_examples=200, deadline=None)
@given(spec=specs())
def test_every_spec_validates_in_process_and_round_trips(spec: DomainSpec, relaxng: Validate) -> None:
    xml = build_domain_xml(spec)
    relaxng(xml)
    assert_round_trip(spec, xml)


# virt-xml-validate forks xmllint per document: a few examples, the same property.
@settings(max_examples=15, deadline=None)
@given(spec=specs())
def test_every_spec_passes_virt_xml_validate(spec: DomainSpec, virt_xml_validate: Validate) -> None:
    virt_xml_validate(build_domain_xml(spec))
