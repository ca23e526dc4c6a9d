"""The sysfs backend against simulated servers' /sys trees (real symlinks, kernel layout)."""

from __future__ import annotations

from pathlib import Path

from epa.discovery.pci_ids import PciIds
from epa.discovery.sysfs import scan_sysfs
from epa.domain.address import PciAddress
from epa.domain.device import DevType
from epa.simulate.hosts import gpu_host, no_numa_host
from epa.simulate.model import SimHost

A = PciAddress.parse


def test_every_simulated_function_is_found_as_described(nfv: SimHost, nfv_sysfs: Path) -> None:
    result = scan_sysfs(nfv_sysfs)
    assert result.warnings == ()
    found = result.by_address()
    assert set(found) == {f.address for f in nfv.functions}
    for fn in nfv.functions:
        dev = found[fn.address]
        vfs = nfv.vfs_of(fn.address)
        assert dev.vendor_id == fn.vendor
        assert dev.product_id == fn.device
        assert dev.class_code == fn.class_code
        assert dev.driver == fn.driver
        assert dev.iommu_group == fn.iommu_group
        assert dev.numa_node == (fn.numa_node if fn.numa_node is not None and fn.numa_node >= 0 else None)
        assert dev.parent_addr == fn.physfn
        assert dev.vf_addrs == tuple(v.address for v in vfs)
        assert [n.name for n in dev.netdevs] == sorted(n.name for n in fn.netdevs)
        assert dev.pci_root == fn.root
        assert dev.pcie_path == tuple(b.address for b in nfv.chain(fn))


def test_sriov_relations_on_the_nfv_host(nfv_sysfs: Path) -> None:
    found = scan_sysfs(nfv_sysfs).by_address()
    pf = found[A("0000:18:00.0")]
    assert pf.dev_type is DevType.PF
    assert (pf.sriov_totalvfs, pf.sriov_numvfs) == (64, 8)
    assert pf.vf_addrs[0] == A("0000:18:02.0")
    assert pf.netdev == "ens785f0"
    vf = found[A("0000:18:02.0")]
    assert (vf.dev_type, vf.parent_addr, vf.driver) == (DevType.VF, pf.address, "iavf")
    assert vf.netdev == "ens785f0v0"
    assert vf.netdevs[0].mac is not None
    vfio_vf = found[A("0000:18:0a.0")]
    assert (vfio_vf.driver, vfio_vf.netdevs, vfio_vf.parent_addr) == ("vfio-pci", (), A("0000:18:00.1"))
    qat = found[A("0000:3d:00.0")]
    assert (qat.dev_type, qat.sriov_totalvfs, len(qat.vf_addrs)) == (DevType.PF, 16, 16)
    assert qat.pcie_path == (A("0000:3a:00.0"), A("0000:3b:00.0"), A("0000:3c:00.0"))
    assert qat.pci_root == "pci0000:3a"
    assert found[A("0000:3d:02.7")].parent_addr == qat.address
    assert {found[v].driver for v in qat.vf_addrs} == {"c6xxvf", "vfio-pci"}


def test_switchdev_nic_reports_its_eswitch(nfv_sysfs: Path) -> None:
    cx5 = scan_sysfs(nfv_sysfs).by_address()[A("0000:5e:00.0")]
    assert cx5.switchdev
    assert cx5.netdev == "enp94s0f0np0"
    assert len(cx5.netdevs) == 5
    assert {n.phys_switch_id for n in cx5.netdevs} == {"b8cef6fffe0a1b2c"}
    assert cx5.numa_node == 1


def test_plain_functions_and_bridges(nfv_sysfs: Path) -> None:
    found = scan_sysfs(nfv_sysfs).by_address()
    gpu = found[A("0000:af:00.0")]
    assert (gpu.dev_type, gpu.class_code, gpu.numa_node) == (DevType.PCI, "030200", 1)
    assert (gpu.subsystem_vendor_id, gpu.subsystem_product_id) == ("10de", "12a2")
    bridge = found[A("0000:3b:00.0")]
    assert bridge.is_bridge and bridge.dev_type is DevType.PCI
    assert not gpu.is_bridge


def test_host_without_numa_information(tmp_path: Path) -> None:
    from epa.simulate.sysfs_tree import render_sysfs

    result = scan_sysfs(render_sysfs(no_numa_host(), tmp_path))
    assert result.warnings == ()
    assert result.devices and all(d.numa_node is None for d in result.devices)


def test_pf_without_vfs_is_still_a_pf(gpu_sysfs: Path) -> None:
    e810 = scan_sysfs(gpu_sysfs).by_address()[A("0000:4b:00.0")]
    assert (e810.dev_type, e810.sriov_totalvfs, e810.sriov_numvfs, e810.vf_addrs) == (DevType.PF, 256, 0, ())
    assert len([d for d in gpu_host().functions if d.device == "20b0"]) == 4


def test_names_come_from_pci_ids(nfv_sysfs: Path) -> None:
    ids = PciIds.parse(["8086  Intel Corporation", "\t37c9  C62x QAT VF", "\t\t8086 0000  sub", "C 02  Net"])
    vf = scan_sysfs(nfv_sysfs, ids).by_address()[A("0000:3d:01.0")]
    assert (vf.vendor_name, vf.product_name) == ("Intel Corporation", "C62x QAT VF")
    gpu = scan_sysfs(nfv_sysfs, ids).by_address()[A("0000:af:00.0")]
    assert (gpu.vendor_name, gpu.product_name) == (None, None)


def test_json_form_uses_canonical_strings(nfv_sysfs: Path) -> None:
    vf = scan_sysfs(nfv_sysfs).by_address()[A("0000:3d:01.0")].to_json()
    assert vf["address"] == "0000:3d:01.0"
    assert vf["parent_addr"] == "0000:3d:00.0"
    assert vf["dev_type"] == "type-VF"
    assert vf["class_code"] == "0b4000"
    assert vf["pcie_path"] == ["0000:3a:00.0", "0000:3b:00.0", "0000:3c:00.0"]


def test_a_pci_ids_file_that_cannot_be_read_is_a_warning_of_the_scan(nfv_sysfs: Path, tmp_path: Path) -> None:
    from epa.discovery.pci_ids import load_pci_ids

    unreadable = tmp_path / "pci.ids"
    unreadable.mkdir()  # there, but not a file that can be read
    names = load_pci_ids(unreadable)
    assert names.vendors == {}
    assert len(names.warnings) == 1 and str(unreadable) in names.warnings[0]
    assert names.warnings[0] in scan_sysfs(nfv_sysfs, names).warnings
    # No pci.ids at all is normal (a minimal install): no names, and nothing to warn about.
    assert load_pci_ids(tmp_path / "absent").warnings == []
