"""The libvirt backend on simulated hosts: render_node_xml -> test:/// -> scan_libvirt."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from epa.discovery import ScanResult
from epa.discovery.libvirt_nodedev import scan_libvirt
from epa.domain import DevType, NetInterface, PciAddress
from epa.simulate import SimHost
from epa.simulate.hosts import gpu_host, nfv_host, no_numa_host, sriov_scale_host
from epa.simulate.libvirt_node import net_node_name, render_node_xml, write_node_xml

A = PciAddress.parse
NODEDEV_SCHEMA = Path("/usr/share/libvirt/schemas/nodedev.rng")
DATA = Path(__file__).parent / "data"


def scan_host(host: SimHost, tmp_path: Path) -> ScanResult:
    return scan_libvirt(write_node_xml(host, tmp_path / f"{host.name}.xml"))


@pytest.mark.parametrize(
    "host",
    [nfv_host(), no_numa_host(), gpu_host(), sriov_scale_host(4, 128)],
    ids=lambda h: h.name,
)
def test_the_test_driver_accepts_each_simulated_host(host: SimHost, tmp_path: Path) -> None:
    uri = write_node_xml(host, tmp_path / "node.xml")
    conn = libvirt.open(uri)
    try:
        names = {d.name() for d in conn.listAllDevices(0)}
        pci = conn.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV)
        assert {fn.address.libvirt_name for fn in host.functions} <= names
        assert len(pci) == len(host.functions)
        assert {net_node_name(n) for fn in host.functions for n in fn.netdevs} <= names
        # The test driver's quirk: it keeps <path> but drops <driver> from what it read.
        some = conn.nodeDeviceLookupByName(host.functions[-1].address.libvirt_name).XMLDesc(0)
        assert "<path>/sys/devices/pci" in some
        assert "<driver>" not in some
    finally:
        conn.close()


@pytest.mark.parametrize(
    "host", [nfv_host(), no_numa_host(), gpu_host(), sriov_scale_host(2, 16)], ids=lambda h: h.name
)
def test_every_simulated_function_is_reported_as_modelled(host: SimHost, tmp_path: Path) -> None:
    result = scan_host(host, tmp_path)
    assert [w for w in result.warnings if "switchdev" not in w] == []
    assert [d.address for d in result.devices] == sorted(fn.address for fn in host.functions)
    got = result.by_address()
    for fn in host.functions:
        dev = got[fn.address]
        vfs = [v.address for v in host.vfs_of(fn.address)]
        assert (dev.vendor_id, dev.product_id, dev.class_code) == (fn.vendor, fn.device, fn.class_code)
        assert dev.numa_node == (fn.numa_node if fn.numa_node is not None and fn.numa_node >= 0 else None)
        assert dev.iommu_group == fn.iommu_group
        assert dev.parent_addr == fn.physfn
        assert dev.vf_addrs == tuple(vfs)
        assert dev.pcie_path == tuple(b.address for b in host.chain(fn))
        assert dev.pci_root == fn.root
        assert dev.driver is None  # the test driver drops it
        assert dev.netdevs == tuple(
            sorted((NetInterface(n.name, n.mac, n.operstate, None) for n in fn.netdevs), key=lambda n: n.name)
        )
        if fn.physfn is not None:
            assert dev.dev_type is DevType.VF
            assert (dev.sriov_totalvfs, dev.sriov_numvfs) == (None, None)
        elif fn.sriov_totalvfs:
            assert dev.dev_type is DevType.PF
            assert (dev.sriov_totalvfs, dev.sriov_numvfs) == (fn.sriov_totalvfs, len(vfs))
        else:
            assert dev.dev_type is DevType.PCI


def test_nfv_host_qat_behind_a_pcie_switch(tmp_path: Path) -> None:
    got = scan_host(nfv_host(), tmp_path).by_address()
    qat = got[A("0000:3d:00.0")]
    assert qat.pcie_path == (A("0000:3a:00.0"), A("0000:3b:00.0"), A("0000:3c:00.0"))
    assert qat.pci_root == "pci0000:3a"
    assert qat.dev_type is DevType.PF
    assert (qat.sriov_totalvfs, qat.sriov_numvfs) == (16, 16)
    assert qat.vf_addrs[0] == A("0000:3d:01.0")
    assert qat.vf_addrs[-1] == A("0000:3d:02.7")
    vf = got[A("0000:3d:02.7")]
    assert (vf.dev_type, vf.parent_addr, vf.product_id) == (DevType.VF, qat.address, "37c9")
    assert vf.pcie_path == qat.pcie_path
    assert vf.numa_node == 0
    # The switch's own ports sit on the same path, one level less each.
    assert got[A("0000:3c:01.0")].pcie_path == (A("0000:3a:00.0"), A("0000:3b:00.0"))
    assert got[A("0000:3a:00.0")].pcie_path == ()


def test_nfv_host_x710_and_connectx5(tmp_path: Path) -> None:
    result = scan_host(nfv_host(), tmp_path)
    got = result.by_address()
    pf0 = got[A("0000:18:00.0")]
    assert (pf0.dev_type, pf0.sriov_totalvfs, pf0.sriov_numvfs, pf0.numa_node) == (DevType.PF, 64, 8, 0)
    assert pf0.netdev == "ens785f0"
    assert got[A("0000:18:02.0")].netdev == "ens785f0v0"  # iavf VF has an interface
    assert got[A("0000:18:0a.0")].netdevs == ()  # vfio-pci VF has none
    cx5 = got[A("0000:5e:00.0")]
    assert cx5.numa_node == 1
    assert [n.name for n in cx5.netdevs][:2] == ["enp94s0f0np0", "enp94s0f0npf0vf0"]
    assert all(n.phys_switch_id is None for n in cx5.netdevs)  # libvirt does not report it
    assert any("switchdev" in w for w in cx5.warnings)
    assert result.warnings == cx5.warnings


def test_no_numa_host_has_no_numa_nodes(tmp_path: Path) -> None:
    result = scan_host(no_numa_host(), tmp_path)
    assert result.warnings == ()
    assert {d.numa_node for d in result.devices} == {None}
    pf1 = result.by_address()[A("0000:01:00.1")]
    assert (pf1.dev_type, pf1.sriov_numvfs, pf1.vf_addrs) == (DevType.PF, 0, ())
    assert {d.pci_root for d in result.devices} == {"pci0000:00"}


def test_gpu_host_e810_without_vfs_is_still_a_pf(tmp_path: Path) -> None:
    got = scan_host(gpu_host(), tmp_path).by_address()
    e810 = got[A("0000:4b:00.0")]
    assert e810.dev_type is DevType.PF
    assert (e810.sriov_totalvfs, e810.sriov_numvfs, e810.vf_addrs) == (256, 0, ())
    assert e810.netdev == "ens2f0"
    gpus = [d for d in got.values() if d.vendor_id == "10de"]
    assert [(str(g.address), g.numa_node, g.pci_root) for g in gpus] == [
        ("0000:17:00.0", 0, "pci0000:16"),
        ("0000:31:00.0", 0, "pci0000:30"),
        ("0000:ca:00.0", 1, "pci0000:c9"),
        ("0000:e3:00.0", 1, "pci0000:e2"),
    ]


def test_sriov_scale_host_relations(tmp_path: Path) -> None:
    result = scan_host(sriov_scale_host(4, 128), tmp_path)
    assert len(result.devices) == 4 * (128 + 2)
    pfs = [d for d in result.devices if d.dev_type is DevType.PF]
    assert len(pfs) == 4
    got = result.by_address()
    for pf in pfs:
        assert (pf.sriov_totalvfs, pf.sriov_numvfs) == (256, 128)
        assert all(got[vf].parent_addr == pf.address for vf in pf.vf_addrs)


def test_render_node_xml_is_shaped_like_libvirts_own_output() -> None:
    xml = render_node_xml(no_numa_host())
    assert xml.startswith("<node>")
    # The kernel's numa_node -1 is never printed; libvirt leaves <numa> out.
    assert "<numa" not in xml
    assert "<name>net_eno1_3c_fd_fe_00_00_01</name>" in xml
    assert "<parent>computer</parent>" in xml


def test_every_rendered_device_validates_against_libvirts_schema(tmp_path: Path) -> None:
    # ./dev test installs both (Debian packages libxml2-utils and libvirt-clients / libvirt-dev).
    assert shutil.which("xmllint"), "xmllint (libxml2-utils) is needed"
    assert NODEDEV_SCHEMA.exists(), f"libvirt's schema {NODEDEV_SCHEMA} is needed"
    files = []
    documents = [ET.fromstring(render_node_xml(h)) for h in (nfv_host(), no_numa_host(), gpu_host())]  # noqa: S314
    documents.append(ET.parse(DATA / "small_host_nodedev.xml").getroot())  # noqa: S314
    for doc in documents:
        for dev in doc.findall("device"):
            path = tmp_path / f"dev{len(files)}.xml"
            path.write_text(ET.tostring(dev, encoding="unicode"))
            files.append(str(path))
    proc = subprocess.run(
        ["xmllint", "--noout", "--relaxng", str(NODEDEV_SCHEMA), *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
