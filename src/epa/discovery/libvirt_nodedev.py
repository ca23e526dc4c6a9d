"""The libvirt discovery backend: reads PCI functions from libvirt's node-device API.

The XML is parsed here, from plain strings, so the parser is tested without a connection. A field
that does not parse gives a warning naming the node device, the field and the value: a device
whose identity (address, vendor, product, class) is unreadable is skipped, an optional field is
left None, and the scan carries on."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from epa.discovery.links import check_pf_vf_links
from epa.discovery.pci_ids import PciIds
from epa.discovery.result import ScanResult
from epa.domain.address import PciAddress
from epa.domain.device import DevType, NetInterface, PciDevice
from epa.domain.hexid import parse_hex_id
from epa.errors import InvalidInput
from epa.libvirt_client import open_connection

_ROOT_COMPLEX = re.compile(r"pci[0-9a-f]{4}:[0-9a-f]{2}")
# Python's int() also takes "1_000", "+1" and non-ASCII digits; libvirt writes none of them.
_DECIMAL = re.compile(r"-?[0-9]+")
_HEX = re.compile(r"[0-9a-f]+")
_SYS_DEVICES = "/sys/devices/"


def scan_libvirt(uri: str, names: PciIds | None = None) -> ScanResult:
    """Scan every PCI function libvirt at ``uri`` reports (``qemu:///system``, ``test:///FILE``).

    Raises :class:`epa.errors.LibvirtError` when libvirt cannot be reached or listed."""
    with open_connection(uri) as conn:
        pci = conn.node_device_xml("pci")
        net = conn.node_device_xml("net")
    devices, warnings = devices_from_nodedev_xml(pci, net, names)
    unread = tuple(names.warnings) if names is not None else ()
    return ScanResult(source=f"libvirt:{uri}", devices=tuple(devices), warnings=(*unread, *warnings))


class _Skip(Exception):
    """A field the device cannot do without is missing or garbage."""


@dataclass(slots=True)
class _PciNode:
    name: str
    parent: str | None
    path: str | None
    device: PciDevice
    warnings: list[str] = field(default_factory=list)


def _number(text: str) -> int:
    """libvirt prints these in decimal; a ``0x`` prefix is read as hex (its parser's other form)."""
    text = text.strip().lower()
    if text.startswith("0x") and _HEX.fullmatch(text[2:]):
        return int(text[2:], 16)
    if not _DECIMAL.fullmatch(text) or text.startswith("-"):
        raise ValueError(text)
    return int(text, 10)


def _parse_xml(xml: str) -> ET.Element:
    try:
        # The XML comes from the local libvirt daemon, and expat does not expand external entities.
        return ET.fromstring(xml)  # noqa: S314
    except ET.ParseError as e:
        raise _Skip(f"the XML does not parse ({e})") from e


def _address_element(el: ET.Element) -> PciAddress:
    """``<address domain='0x0000' bus='0x18' slot='0x02' function='0x0'/>`` (hex, 0x optional)."""
    values = []
    for attr in ("domain", "bus", "slot", "function"):
        raw = el.get(attr)
        if raw is None:
            raise InvalidInput(f"<address> has no {attr}")
        text = raw.strip().lower().removeprefix("0x")
        if not _HEX.fullmatch(text):
            raise InvalidInput(f"<address> {attr} {raw!r} is not a hex number")
        values.append(int(text, 16))
    return PciAddress(*values)


def _own_address(cap: ET.Element) -> PciAddress:
    values = []
    for tag in ("domain", "bus", "slot", "function"):
        text = cap.findtext(tag)
        if text is None:
            raise _Skip(f"<{tag}> is missing")
        try:
            values.append(_number(text))
        except ValueError:
            raise _Skip(f"<{tag}> {text!r} is not a number") from None
    try:
        return PciAddress(*values)
    except InvalidInput as e:
        raise _Skip(str(e)) from e


def _hex_attr(cap: ET.Element, tag: str, digits: int) -> str:
    el = cap.find(tag)
    raw = el.get("id") if el is not None else None
    if raw is None:
        raise _Skip(f"<{tag} id=...> is missing")
    try:
        return parse_hex_id(raw, f"{tag} id", digits)
    except InvalidInput as e:
        raise _Skip(str(e)) from e


def _text_or_none(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


class _Fields:
    """Reads the optional fields of one node device; each one that does not parse is a warning."""

    def __init__(self, name: str, warnings: list[str]) -> None:
        self.name = name
        self.warnings = warnings

    def warn(self, problem: str) -> None:
        self.warnings.append(f"libvirt node device {self.name}: {problem}")

    def int_attr(self, el: ET.Element | None, attr: str, what: str) -> int | None:
        if el is None:
            return None
        raw = el.get(attr)
        if raw is None:
            self.warn(f"{what} has no {attr}")
            return None
        if not _DECIMAL.fullmatch(raw.strip()):
            self.warn(f"{what} {attr} {raw!r} is not an integer")
            return None
        return int(raw.strip(), 10)

    def address(self, el: ET.Element, what: str) -> PciAddress | None:
        try:
            return _address_element(el)
        except InvalidInput as e:
            self.warn(f"{what}: {e}")
            return None


def _parse_pci(name: str, xml: str, names: PciIds | None) -> _PciNode:
    root = _parse_xml(xml)
    cap = root.find("capability[@type='pci']")
    if cap is None:
        raise _Skip("no <capability type='pci'>")
    address = _own_address(cap)
    vendor = _hex_attr(cap, "vendor", 4)
    product = _hex_attr(cap, "product", 4)
    class_text = cap.findtext("class")
    if class_text is None:
        raise _Skip("<class> is missing")
    try:
        class_code = parse_hex_id(class_text, "class", 6)
    except InvalidInput as e:
        raise _Skip(str(e)) from e

    warnings: list[str] = []
    f = _Fields(name, warnings)
    if name.startswith("pci_"):
        try:
            named = PciAddress.from_libvirt_name(name)
        except InvalidInput:
            named = None
        if named != address:
            f.warn(f"the name does not match the address in its XML ({address})")

    numa = f.int_attr(cap.find("numa"), "node", "<numa>")
    iommu_el = cap.find("iommuGroup")
    iommu = f.int_attr(iommu_el, "number", "<iommuGroup>")
    if iommu is not None and iommu < 0:
        f.warn(f"<iommuGroup> number {iommu} is negative")
        iommu = None

    parent_addr: PciAddress | None = None
    phys = cap.find("capability[@type='phys_function']")
    if phys is not None:
        pf_el = phys.find("address")
        if pf_el is None:
            f.warn("<capability type='phys_function'> has no <address>")
        else:
            parent_addr = f.address(pf_el, "<capability type='phys_function'>")

    total: int | None = None
    vf_addrs: list[PciAddress] = []
    virt = cap.find("capability[@type='virt_functions']")
    if virt is not None:
        if virt.get("maxCount") is not None:
            total = f.int_attr(virt, "maxCount", "<capability type='virt_functions'>")
            if total is not None and total < 0:
                f.warn(f"<capability type='virt_functions'> maxCount {total} is negative")
                total = None
        for el in virt.findall("address"):
            vf = f.address(el, "<capability type='virt_functions'>")
            if vf is not None:
                vf_addrs.append(vf)
        vf_addrs.sort()

    if phys is not None:
        dev_type = DevType.VF
        if virt is not None:
            f.warn("it has both phys_function and virt_functions; read as a VF")
            total, vf_addrs = None, []
    elif (total or 0) > 0 or vf_addrs:
        dev_type = DevType.PF
    else:
        dev_type = DevType.PCI

    if names is not None:
        vendor_name = names.vendor_name(vendor) or _text_or_none(cap.find("vendor"))
        product_name = names.product_name(vendor, product) or _text_or_none(cap.find("product"))
    else:
        vendor_name = _text_or_none(cap.find("vendor"))
        product_name = _text_or_none(cap.find("product"))

    device = PciDevice(
        address=address,
        vendor_id=vendor,
        product_id=product,
        class_code=class_code,
        dev_type=dev_type,
        parent_addr=parent_addr,
        numa_node=numa if numa is not None and numa >= 0 else None,
        iommu_group=iommu,
        driver=_text_or_none(root.find("driver/name")),
        sriov_totalvfs=total if virt is not None and dev_type is not DevType.VF else None,
        sriov_numvfs=len(vf_addrs) if virt is not None and dev_type is not DevType.VF else None,
        vf_addrs=tuple(vf_addrs),
        vendor_name=vendor_name,
        product_name=product_name,
    )
    return _PciNode(
        name=name,
        parent=_text_or_none(root.find("parent")),
        path=_text_or_none(root.find("path")),
        device=device,
        warnings=warnings,
    )


def _pcie_path(node: _PciNode, nodes: dict[str, _PciNode]) -> tuple[PciAddress, ...]:
    """The bridges above ``node``, root-most first: its ``<parent>`` chain up to a non-PCI parent."""
    f = _Fields(node.name, node.warnings)
    bridges: list[PciAddress] = []
    seen = {node.name}
    parent = node.parent
    while parent is not None and (parent in nodes or parent.startswith("pci_")):
        if parent in seen:
            f.warn(f"its <parent> chain loops at {parent}; PCIe path cut there")
            break
        seen.add(parent)
        up = nodes.get(parent)
        if up is None:
            try:
                bridges.append(PciAddress.from_libvirt_name(parent))
            except InvalidInput as e:
                f.warn(f"<parent> {parent!r}: {e}")
            f.warn(f"<parent> {parent} is not among the PCI node devices; PCIe path may be incomplete")
            break
        bridges.append(up.device.address)
        parent = up.parent
    bridges.reverse()
    return tuple(bridges)


def _pci_root(node: _PciNode, bridges: tuple[PciAddress, ...]) -> str:
    """The root complex, ``pciDDDD:BB``: the first directory under ``/sys/devices`` when libvirt
    gives the sysfs path (as the sysfs backend reads it), else the root-most bridge's bus."""
    if node.path is not None and node.path.startswith(_SYS_DEVICES):
        first = node.path[len(_SYS_DEVICES) :].split("/", 1)[0]
        if _ROOT_COMPLEX.fullmatch(first):
            return first
    top = bridges[0] if bridges else node.device.address
    return f"pci{top.domain:04x}:{top.bus:02x}"


def _attach_netdevs(
    net: list[tuple[str, str]], nodes: dict[str, _PciNode], warnings: list[str]
) -> dict[str, list[NetInterface]]:
    """Interfaces by the PCI node device they sit on; interfaces on anything else are not ours."""
    out: dict[str, list[NetInterface]] = {}
    switchdev: set[str] = set()
    for name, xml in net:
        try:
            root = _parse_xml(xml)
        except _Skip as e:
            warnings.append(f"libvirt node device {name}: skipped, {e}")
            continue
        parent = _text_or_none(root.find("parent"))
        if parent is None or parent not in nodes:
            if parent is not None and parent.startswith("pci_"):
                warnings.append(f"libvirt node device {name}: <parent> {parent} is not among the PCI node devices")
            continue
        cap = root.find("capability[@type='net']")
        ifname = _text_or_none(cap.find("interface")) if cap is not None else None
        if cap is None or ifname is None:
            warnings.append(f"libvirt node device {name}: skipped, no <capability type='net'><interface>")
            continue
        link = cap.find("link")
        out.setdefault(parent, []).append(
            NetInterface(
                name=ifname,
                mac=_text_or_none(cap.find("address")),
                operstate=link.get("state") if link is not None else None,
                phys_switch_id=None,  # libvirt does not report it
            )
        )
        if cap.find("feature[@name='switchdev']") is not None:
            switchdev.add(parent)
    for parent in sorted(switchdev):
        nodes[parent].warnings.append(
            f"libvirt node device {parent}: its interfaces are in switchdev mode, but libvirt does not "
            "report phys_switch_id (the sysfs backend does)"
        )
    return out


def devices_from_nodedev_xml(
    pci: list[tuple[str, str]], net: list[tuple[str, str]], names: PciIds | None
) -> tuple[list[PciDevice], list[str]]:
    """PCI functions from ``(name, XML)`` pairs of ``pci`` and ``net`` node devices, sorted by
    address, and one warning per field that could not be read."""
    warnings: list[str] = []
    nodes: dict[str, _PciNode] = {}
    seen: dict[PciAddress, str] = {}
    for name, xml in pci:
        try:
            node = _parse_pci(name, xml, names)
        except _Skip as e:
            warnings.append(f"libvirt node device {name}: skipped, {e}")
            continue
        address = node.device.address
        if address in seen:
            warnings.append(f"libvirt node device {name}: skipped, {address} is already node device {seen[address]}")
            continue
        seen[address] = name
        nodes[name] = node

    netdevs = _attach_netdevs(net, nodes, warnings)
    devices: list[PciDevice] = []
    for node in nodes.values():
        bridges = _pcie_path(node, nodes)
        device = dataclasses.replace(
            node.device,
            pcie_path=bridges,
            pci_root=_pci_root(node, bridges),
            netdevs=tuple(sorted(netdevs.get(node.name, []), key=lambda n: n.name)),
            warnings=tuple(node.warnings),
        )
        warnings.extend(node.warnings)
        devices.append(device)
    devices.sort(key=lambda d: d.address)
    check_pf_vf_links(devices, warnings, "phys_function is", "is not among the node devices")
    return devices, warnings
