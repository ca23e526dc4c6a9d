"""Render a simulated host as a libvirt ``test:///`` node file: a ``<node>`` of ``<device>`` elements
shaped like ``virsh nodedev-dumpxml`` on a real host (libvirt 9), so the libvirt discovery backend
reads the same host the sysfs tree describes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from epa.domain.address import PciAddress
from epa.simulate.model import SimFunction, SimHost, SimNet
from epa.simulate.sysfs_tree import device_dir

SYS = Path("/sys")

# Offloads a real NIC reports in <feature name=.../>; all of them are names libvirt's parser knows.
_NET_FEATURES = ("rx", "tx", "sg", "tso", "gso", "gro", "rxvlan", "txvlan", "rxhash")

# (speed in GT/s, width) of the PCIe link by class prefix; libvirt reports it, EPA does not read it.
_LINKS = {"0302": ("16", 16), "0108": ("8", 4), "0200": ("8", 8), "0b40": ("8", 16), "0604": ("8", 16)}
_DEFAULT_LINK = ("8", 8)


def net_node_name(net: SimNet) -> str:
    """libvirt's name for a net node device: ``net_IFNAME_MAC``, every non-alphanumeric as ``_``."""
    raw = f"net_{net.name}_{net.mac}"
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in raw)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _address(parent: ET.Element, addr: PciAddress) -> None:
    # libvirt's virPCIDeviceAddressFormat: function is printed as 0x%d, the rest zero-padded.
    _sub(
        parent,
        "address",
        domain=f"0x{addr.domain:04x}",
        bus=f"0x{addr.bus:02x}",
        slot=f"0x{addr.slot:02x}",
        function=f"0x{addr.function:d}",
    )


def _parent_name(fn: SimFunction) -> str:
    # The kernel parents a function (VFs included) on the bridge above it; on a root bus there is
    # no PCI parent, and libvirt names the host itself.
    return fn.upstream.libvirt_name if fn.upstream is not None else "computer"


def _pci_device(
    host: SimHost,
    fn: SimFunction,
    vfs: list[SimFunction],
    group_members: list[PciAddress],
) -> ET.Element:
    dev = ET.Element("device")
    _sub(dev, "name", fn.address.libvirt_name)
    _sub(dev, "path", str(device_dir(host, fn, SYS)))
    _sub(dev, "parent", _parent_name(fn))
    if fn.driver:
        drv = _sub(dev, "driver")
        _sub(drv, "name", fn.driver)
    cap = _sub(dev, "capability", type="pci")
    _sub(cap, "class", f"0x{fn.class_code}")
    _sub(cap, "domain", str(fn.address.domain))
    _sub(cap, "bus", str(fn.address.bus))
    _sub(cap, "slot", str(fn.address.slot))
    _sub(cap, "function", str(fn.address.function))
    _sub(cap, "product", fn.product_name or None, id=f"0x{fn.device}")
    _sub(cap, "vendor", fn.vendor_name or None, id=f"0x{fn.vendor}")
    if fn.physfn is not None:
        _address(_sub(cap, "capability", type="phys_function"), fn.physfn)
    if fn.sriov_totalvfs is not None or vfs:
        virt = _sub(cap, "capability", type="virt_functions", maxCount=str(fn.sriov_totalvfs or 0))
        for vf in vfs:
            _address(virt, vf.address)
    if fn.class_code.startswith("0604"):
        _sub(cap, "capability", type="pci-bridge")
    if fn.iommu_group is not None:
        group = _sub(cap, "iommuGroup", number=str(fn.iommu_group))
        for member in group_members:
            _address(group, member)
    # libvirt prints <numa> only for a node >= 0: the kernel's -1 ("no affinity") is left out.
    if fn.numa_node is not None and fn.numa_node >= 0:
        _sub(cap, "numa", node=str(fn.numa_node))
    if fn.physfn is None:
        express = _sub(cap, "pci-express")
        # A host bridge is integrated in the root complex: PCI Express, but without a link.
        if not fn.class_code.startswith("0600"):
            speed, width = _LINKS.get(fn.class_code[:4], _DEFAULT_LINK)
            _sub(express, "link", validity="cap", port="0", speed=speed, width=str(width))
            _sub(express, "link", validity="sta", speed=speed, width=str(width))
    return dev


def _net_device(host: SimHost, fn: SimFunction, net: SimNet) -> ET.Element:
    dev = ET.Element("device")
    _sub(dev, "name", net_node_name(net))
    _sub(dev, "path", str(device_dir(host, fn, SYS) / "net" / net.name))
    _sub(dev, "parent", fn.address.libvirt_name)
    cap = _sub(dev, "capability", type="net")
    _sub(cap, "interface", net.name)
    _sub(cap, "address", net.mac)
    # SimNet has no link speed; libvirt leaves speed out when the kernel reports none.
    _sub(cap, "link", state=net.operstate)
    for feature in _NET_FEATURES:
        _sub(cap, "feature", name=feature)
    if net.phys_switch_id:
        # libvirt reports the e-switch mode (devlink), not the switch id itself.
        _sub(cap, "feature", name="switchdev")
    _sub(cap, "capability", type="80203")
    return dev


def render_node_xml(host: SimHost) -> str:
    """The ``<node>`` document for ``host``: one ``<device>`` per PCI function, sorted by address,
    then one per network interface."""
    vfs: dict[PciAddress, list[SimFunction]] = defaultdict(list)
    groups: dict[int, list[PciAddress]] = defaultdict(list)
    for fn in host.functions:
        if fn.physfn is not None:
            vfs[fn.physfn].append(fn)
        if fn.iommu_group is not None:
            groups[fn.iommu_group].append(fn.address)
    node = ET.Element("node")
    functions = sorted(host.functions, key=lambda f: f.address)
    for fn in functions:
        members = sorted(groups[fn.iommu_group]) if fn.iommu_group is not None else []
        node.append(_pci_device(host, fn, sorted(vfs[fn.address], key=lambda f: f.address), members))
    for fn in functions:
        for net in fn.netdevs:
            node.append(_net_device(host, fn, net))
    ET.indent(node)
    return ET.tostring(node, encoding="unicode") + "\n"


def write_node_xml(host: SimHost, path: Path) -> str:
    """Write ``host``'s node file to ``path`` and return the ``test:///`` URI that opens it."""
    path.write_text(render_node_xml(host), encoding="utf-8")
    return f"test://{path.resolve()}"
