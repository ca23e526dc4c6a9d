"""The libvirt backend on a handwritten, real-shaped node file, and on XML that does not parse."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epa.discovery.libvirt_nodedev import devices_from_nodedev_xml, scan_libvirt
from epa.discovery.pci_ids import PciIds
from epa.domain import DevType, NetInterface, PciAddress, PciDevice
from epa.errors import LibvirtError

DATA = Path(__file__).parent / "data"
SMALL_HOST = DATA / "small_host_nodedev.xml"

A = PciAddress.parse


def split_node_file(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The ``(name, XML)`` pairs libvirt's listAllDevices would give for the pci and net caps."""
    pci: list[tuple[str, str]] = []
    net: list[tuple[str, str]] = []
    for dev in ET.parse(path).getroot().findall("device"):  # noqa: S314 - our own test data
        name = dev.findtext("name")
        assert name is not None
        xml = ET.tostring(dev, encoding="unicode")
        if dev.find("capability[@type='pci']") is not None:
            pci.append((name, xml))
        elif dev.find("capability[@type='net']") is not None:
            net.append((name, xml))
    return pci, net


@pytest.fixture(scope="module")
def small_host() -> dict[PciAddress, PciDevice]:
    result = scan_libvirt(f"test://{SMALL_HOST}")
    assert result.source == f"libvirt:test://{SMALL_HOST}"
    assert result.warnings == ()
    assert [d.address for d in result.devices] == sorted(d.address for d in result.devices)
    return result.by_address()


def test_small_host_reports_every_pci_function(small_host: dict[PciAddress, PciDevice]) -> None:
    assert sorted(small_host) == [
        A("0000:17:00.0"), A("0000:18:00.0"), A("0000:18:02.0"), A("0000:18:02.1"),
        A("0000:3a:00.0"), A("0000:3b:00.0"), A("0000:3b:01.0"), A("0000:3b:01.1"),
        A("0000:5d:00.0"), A("0000:5e:00.0"),
    ]  # fmt: skip


def test_small_host_x710_pf(small_host: dict[PciAddress, PciDevice]) -> None:
    assert small_host[A("0000:18:00.0")] == PciDevice(
        address=A("0000:18:00.0"),
        vendor_id="8086",
        product_id="1572",
        class_code="020000",
        dev_type=DevType.PF,
        numa_node=0,
        iommu_group=31,
        driver=None,  # the test driver drops <driver>; see the test without a connection below
        netdevs=(NetInterface("ens785f0", "3c:fd:fe:a1:b2:c0", "up", None),),
        sriov_totalvfs=64,
        sriov_numvfs=2,
        vf_addrs=(A("0000:18:02.0"), A("0000:18:02.1")),  # sorted, though listed 02.1 first
        pci_root="pci0000:17",
        pcie_path=(A("0000:17:00.0"),),
        vendor_name="Intel Corporation",
        product_name="Ethernet Controller X710 for 10GbE SFP+",
    )


def test_small_host_x710_vfs(small_host: dict[PciAddress, PciDevice]) -> None:
    vf0 = small_host[A("0000:18:02.0")]
    assert vf0 == PciDevice(
        address=A("0000:18:02.0"),
        vendor_id="8086",
        product_id="154c",
        class_code="020000",
        dev_type=DevType.VF,
        parent_addr=A("0000:18:00.0"),
        numa_node=0,
        iommu_group=90,
        netdevs=(NetInterface("ens785f0v0", "52:54:00:5e:0a:01", "down", None),),
        pci_root="pci0000:17",
        pcie_path=(A("0000:17:00.0"),),  # a VF hangs off the bridge above its PF, not off the PF
        vendor_name="Intel Corporation",
        product_name="Ethernet Virtual Function 700 Series",
    )
    vf1 = small_host[A("0000:18:02.1")]
    assert vf1.dev_type is DevType.VF
    assert vf1.parent_addr == A("0000:18:00.0")
    assert vf1.iommu_group == 91
    assert vf1.netdevs == ()
    assert (vf1.sriov_totalvfs, vf1.sriov_numvfs, vf1.vf_addrs) == (None, None, ())


def test_small_host_qat_pf_and_vfs(small_host: dict[PciAddress, PciDevice]) -> None:
    pf = small_host[A("0000:3b:00.0")]
    assert (pf.vendor_id, pf.product_id, pf.class_code) == ("8086", "37c8", "0b4000")
    assert pf.dev_type is DevType.PF
    assert (pf.sriov_totalvfs, pf.sriov_numvfs) == (16, 2)
    assert pf.vf_addrs == (A("0000:3b:01.0"), A("0000:3b:01.1"))
    assert (pf.numa_node, pf.iommu_group) == (0, 41)
    assert (pf.pci_root, pf.pcie_path) == ("pci0000:3a", (A("0000:3a:00.0"),))
    assert pf.product_name == "C62x Chipset QuickAssist Technology"
    for vf_addr, group in ((A("0000:3b:01.0"), 100), (A("0000:3b:01.1"), 101)):
        vf = small_host[vf_addr]
        assert (vf.product_id, vf.dev_type, vf.parent_addr) == ("37c9", DevType.VF, pf.address)
        assert vf.iommu_group == group
        assert vf.pcie_path == (A("0000:3a:00.0"),)


def test_small_host_gpu_without_numa(small_host: dict[PciAddress, PciDevice]) -> None:
    gpu = small_host[A("0000:5e:00.0")]
    assert gpu == PciDevice(
        address=A("0000:5e:00.0"),
        vendor_id="10de",
        product_id="1eb8",
        class_code="030200",
        dev_type=DevType.PCI,
        numa_node=None,  # no <numa> element
        iommu_group=51,
        pci_root="pci0000:5d",
        pcie_path=(A("0000:5d:00.0"),),
        vendor_name="NVIDIA Corporation",
        product_name="TU104GL [Tesla T4]",
    )


def test_small_host_root_ports(small_host: dict[PciAddress, PciDevice]) -> None:
    for addr, root, group in (
        (A("0000:17:00.0"), "pci0000:17", 30),
        (A("0000:3a:00.0"), "pci0000:3a", 40),
        (A("0000:5d:00.0"), "pci0000:5d", 50),
    ):
        port = small_host[addr]
        assert port.is_bridge
        assert (port.class_code, port.dev_type) == ("060400", DevType.PCI)
        assert (port.pci_root, port.pcie_path, port.iommu_group) == (root, (), group)
        assert port.netdevs == ()


def test_small_host_ignores_net_devices_not_on_pci(small_host: dict[PciAddress, PciDevice]) -> None:
    names = [n.name for d in small_host.values() for n in d.netdevs]
    assert sorted(names) == ["ens785f0", "ens785f0v0"]  # not lo


def test_real_libvirt_output_keeps_the_driver() -> None:
    # Real libvirt reports <driver><name>; the test driver drops it, so feed the file's XML directly.
    pci, net = split_node_file(SMALL_HOST)
    devices, warnings = devices_from_nodedev_xml(pci, net, None)
    assert warnings == []
    drivers = {str(d.address): d.driver for d in devices}
    assert drivers == {
        "0000:17:00.0": "pcieport",
        "0000:18:00.0": "i40e",
        "0000:18:02.0": "iavf",
        "0000:18:02.1": "vfio-pci",
        "0000:3a:00.0": "pcieport",
        "0000:3b:00.0": "c6xx",
        "0000:3b:01.0": "vfio-pci",
        "0000:3b:01.1": "vfio-pci",
        "0000:5d:00.0": "pcieport",
        "0000:5e:00.0": "vfio-pci",
    }


def test_names_come_from_pci_ids_when_given() -> None:
    pci, net = split_node_file(SMALL_HOST)
    ids = PciIds.parse(["8086  Intel Corp.", "\t1572  X710 from pci.ids"])
    by_addr = {d.address: d for d in devices_from_nodedev_xml(pci, net, ids)[0]}
    pf = by_addr[A("0000:18:00.0")]
    assert (pf.vendor_name, pf.product_name) == ("Intel Corp.", "X710 from pci.ids")
    # pci.ids lacks the VF and NVIDIA: libvirt's own text fills in.
    vf = by_addr[A("0000:18:02.0")]
    assert (vf.vendor_name, vf.product_name) == ("Intel Corp.", "Ethernet Virtual Function 700 Series")
    assert by_addr[A("0000:5e:00.0")].vendor_name == "NVIDIA Corporation"


def test_scan_of_an_unopenable_uri_is_a_libvirt_error() -> None:
    with pytest.raises(LibvirtError, match=r"test:///nonexistent/file\.xml"):
        scan_libvirt("test:///nonexistent/file.xml")


# --- XML that does not parse --------------------------------------------------------------------


def pci_xml(
    name: str = "pci_0000_18_00_0",
    *,
    domain: str = "0",
    bus: str = "24",
    slot: str = "0",
    function: str = "0",
    vendor: str = "0x8086",
    product: str = "0x1572",
    klass: str | None = "0x020000",
    extra: str = "",
    parent: str = "computer",
    path: str | None = "/sys/devices/pci0000:18/0000:18:00.0",
) -> tuple[str, str]:
    class_el = f"<class>{klass}</class>" if klass is not None else ""
    path_el = f"<path>{path}</path>" if path is not None else ""
    return name, (
        f"<device><name>{name}</name>{path_el}<parent>{parent}</parent>"
        f"<capability type='pci'>{class_el}<domain>{domain}</domain><bus>{bus}</bus>"
        f"<slot>{slot}</slot><function>{function}</function>"
        f"<product id='{product}'/><vendor id='{vendor}'/>{extra}</capability></device>"
    )


def scan(*pci: tuple[str, str], net: tuple[tuple[str, str], ...] = ()) -> tuple[list[PciDevice], list[str]]:
    return devices_from_nodedev_xml(list(pci), list(net), None)


@pytest.mark.parametrize(
    ("kwargs", "expect"),
    [
        ({"vendor": "0xzz86"}, "vendor id '0xzz86'"),
        ({"product": "0x123456"}, "product id '0x123456'"),
        ({"klass": "0xnope"}, "class '0xnope'"),
        ({"klass": None}, "<class> is missing"),
        ({"bus": "twenty"}, "<bus> 'twenty'"),
        ({"slot": "40"}, "slot 40"),
        ({"function": "-1"}, "<function> '-1'"),
        ({"domain": "1_0"}, "<domain> '1_0'"),
    ],
)
def test_an_unreadable_identity_skips_the_device(kwargs: dict[str, str | None], expect: str) -> None:
    args = {"bus": "25"} | kwargs
    bad = pci_xml("pci_0000_19_00_0", **args)  # type: ignore[arg-type]
    devices, warnings = scan(pci_xml(), bad)
    assert [str(d.address) for d in devices] == ["0000:18:00.0"]
    assert len(warnings) == 1
    assert warnings[0].startswith("libvirt node device pci_0000_19_00_0: skipped, ")
    assert expect in warnings[0]


def test_xml_that_does_not_parse_skips_the_device() -> None:
    devices, warnings = scan(pci_xml(), ("pci_0000_19_00_0", "<device><name>pci_0000_19"))
    assert len(devices) == 1
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "libvirt node device pci_0000_19_00_0: skipped, the XML does not parse (no element found"
    )


@pytest.mark.parametrize(
    ("extra", "field", "expect"),
    [
        ("<numa node='zero'/>", "numa_node", "<numa> node 'zero' is not an integer"),
        ("<numa node='1_0'/>", "numa_node", "<numa> node '1_0' is not an integer"),
        ("<iommuGroup number='x1'/>", "iommu_group", "<iommuGroup> number 'x1' is not an integer"),
        ("<iommuGroup number='-4'/>", "iommu_group", "<iommuGroup> number -4 is negative"),
        ("<iommuGroup/>", "iommu_group", "<iommuGroup> has no number"),
        (
            "<capability type='virt_functions' maxCount='lots'/>",
            "sriov_totalvfs",
            "maxCount 'lots' is not an integer",
        ),
    ],
)
def test_an_unreadable_optional_field_is_left_none(extra: str, field: str, expect: str) -> None:
    devices, warnings = scan(pci_xml(extra=extra))
    assert len(devices) == 1
    assert getattr(devices[0], field) is None
    assert len(warnings) == 1
    assert warnings[0].startswith("libvirt node device pci_0000_18_00_0: ")
    assert expect in warnings[0]
    assert devices[0].warnings == tuple(warnings)


def test_numa_minus_one_means_no_affinity() -> None:
    devices, warnings = scan(pci_xml(extra="<numa node='-1'/>"))
    assert devices[0].numa_node is None
    assert warnings == []


def test_a_bad_vf_address_is_dropped_and_the_rest_kept() -> None:
    extra = (
        "<capability type='virt_functions' maxCount='8'>"
        "<address domain='0x0000' bus='0x18' slot='0x02' function='0x0'/>"
        "<address domain='0x0000' bus='0x18' slot='0x40' function='0x0'/>"
        "<address domain='0x0000' bus='0xgg' slot='0x02' function='0x1'/>"
        "</capability>"
    )
    devices, warnings = scan(pci_xml(extra=extra))
    pf = devices[0]
    assert pf.dev_type is DevType.PF
    assert pf.vf_addrs == (A("0000:18:02.0"),)
    assert (pf.sriov_totalvfs, pf.sriov_numvfs) == (8, 1)
    assert len(warnings) == 3  # two bad addresses, and 18:02.0 is listed but absent
    assert "slot 64" in warnings[0]
    assert "bus '0xgg' is not a hex number" in warnings[1]
    assert warnings[2] == "0000:18:00.0: VF 0000:18:02.0 is listed but is not among the node devices"


def test_a_pf_with_no_vfs_enabled_is_still_a_pf() -> None:
    devices, warnings = scan(pci_xml(extra="<capability type='virt_functions' maxCount='256'/>"))
    assert warnings == []
    assert devices[0].dev_type is DevType.PF
    assert (devices[0].sriov_totalvfs, devices[0].sriov_numvfs, devices[0].vf_addrs) == (256, 0, ())


def test_a_vf_with_an_unreadable_pf_address_is_a_vf_without_parent() -> None:
    extra = "<capability type='phys_function'><address domain='0x0000' bus='0x18'/></capability>"
    devices, warnings = scan(pci_xml(extra=extra))
    assert devices[0].dev_type is DevType.VF
    assert devices[0].parent_addr is None
    assert warnings == [
        "libvirt node device pci_0000_18_00_0: <capability type='phys_function'>: <address> has no slot"
    ]


def test_the_pcie_path_walks_parents_up_to_the_host() -> None:
    root_port = pci_xml("pci_0000_3a_00_0", bus="58", klass="0x060400", path=None)
    switch_up = pci_xml("pci_0000_3b_00_0", bus="59", klass="0x060400", parent="pci_0000_3a_00_0", path=None)
    switch_down = pci_xml("pci_0000_3c_00_0", bus="60", klass="0x060400", parent="pci_0000_3b_00_0", path=None)
    endpoint = pci_xml("pci_0000_3d_00_0", bus="61", parent="pci_0000_3c_00_0", path=None)
    devices, warnings = scan(endpoint, switch_down, root_port, switch_up)
    assert warnings == []
    by_addr = {d.address: d for d in devices}
    qat = by_addr[A("0000:3d:00.0")]
    assert qat.pcie_path == (A("0000:3a:00.0"), A("0000:3b:00.0"), A("0000:3c:00.0"))
    # Without <path>, the root complex is named after the root-most bridge's bus.
    assert {d.pci_root for d in devices} == {"pci0000:3a"}
    assert by_addr[A("0000:3a:00.0")].pcie_path == ()


def test_pci_root_comes_from_the_sysfs_path_when_libvirt_gives_it() -> None:
    # A root complex whose name is not the root bridge's bus: trust the path, as sysfs does.
    devices, _ = scan(pci_xml(path="/sys/devices/pci0000:17/0000:17:00.0/0000:18:00.0"))
    assert devices[0].pci_root == "pci0000:17"


def test_a_missing_parent_cuts_the_pcie_path_with_a_warning() -> None:
    devices, warnings = scan(pci_xml(parent="pci_0000_17_00_0", path=None))
    assert devices[0].pcie_path == (A("0000:17:00.0"),)
    assert devices[0].pci_root == "pci0000:17"
    assert warnings == [
        "libvirt node device pci_0000_18_00_0: <parent> pci_0000_17_00_0 is not among the PCI node "
        "devices; PCIe path may be incomplete"
    ]


def test_a_parent_loop_is_cut_with_a_warning() -> None:
    a = pci_xml("pci_0000_18_00_0", parent="pci_0000_19_00_0")
    b = pci_xml("pci_0000_19_00_0", bus="25", parent="pci_0000_18_00_0")
    devices, warnings = scan(a, b)
    assert len(devices) == 2
    assert any("loops" in w for w in warnings)


def test_a_duplicate_address_keeps_the_first() -> None:
    devices, warnings = scan(pci_xml(), pci_xml("pci_0000_18_00_0_dup"))
    assert len(devices) == 1
    assert any("already node device pci_0000_18_00_0" in w for w in warnings)


def test_switchdev_is_noted_since_libvirt_has_no_switch_id() -> None:
    net = (
        "net_p0_b8_ce_f6_00_00_01",
        "<device><name>net_p0_b8_ce_f6_00_00_01</name><parent>pci_0000_18_00_0</parent>"
        "<capability type='net'><interface>p0</interface><address>b8:ce:f6:00:00:01</address>"
        "<link speed='25000' state='up'/><feature name='switchdev'/><capability type='80203'/>"
        "</capability></device>",
    )
    devices, warnings = scan(pci_xml(), net=(net,))
    assert devices[0].netdevs == (NetInterface("p0", "b8:ce:f6:00:00:01", "up", None),)
    assert len(warnings) == 1
    assert "switchdev" in warnings[0]
    assert "phys_switch_id" in warnings[0]


def test_a_net_device_without_interface_is_skipped() -> None:
    net = (
        "net_x",
        "<device><name>net_x</name><parent>pci_0000_18_00_0</parent><capability type='net'/></device>",
    )
    devices, warnings = scan(pci_xml(), net=(net,))
    assert devices[0].netdevs == ()
    assert warnings == ["libvirt node device net_x: skipped, no <capability type='net'><interface>"]


@given(st.builds(PciAddress, st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.integers(0, 0x1F), st.integers(0, 7)))
def test_libvirt_names_round_trip(address: PciAddress) -> None:
    assert PciAddress.from_libvirt_name(address.libvirt_name) == address


@given(st.builds(PciAddress, st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.integers(0, 0x1F), st.integers(0, 7)))
def test_a_device_xml_round_trips_its_address(address: PciAddress) -> None:
    name, xml = pci_xml(
        address.libvirt_name,
        domain=str(address.domain),
        bus=str(address.bus),
        slot=str(address.slot),
        function=str(address.function),
        path=None,
    )
    devices, warnings = scan((name, xml))
    assert warnings == []
    assert devices[0].address == address
    assert devices[0].pci_root == f"pci{address.domain:04x}:{address.bus:02x}"
