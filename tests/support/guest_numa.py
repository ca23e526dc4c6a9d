"""Read a domain's device locality back: each passed-through device's guest NUMA node, found by
following its guest PCI address up through the PCI controllers to an expander bus's ``<target><node>``."""

from __future__ import annotations

from lxml import etree

from epa.domain.address import PciAddress


def guest_node_of(xml: str) -> dict[PciAddress, int]:
    """Host address -> guest NUMA node, for the devices that sit below an expander bus with a node."""
    root = etree.fromstring(xml.encode())
    controllers = {int(c.get("index", "")): c for c in root.iterfind("devices/controller[@type='pci']")}

    def node_of_bus(index: int) -> int | None:
        c = controllers.get(index)
        if c is None:
            return None
        node = c.findtext("target/node")
        if node is not None:
            return int(node)
        up = c.find("address")
        return node_of_bus(int(up.get("bus", ""), 16)) if up is not None else None

    out: dict[PciAddress, int] = {}
    for dev in [*root.iterfind("devices/hostdev"), *root.iterfind("devices/interface[@type='hostdev']")]:
        src, at = dev.find("source/address"), dev.find("address")
        if src is None or at is None:
            continue
        node = node_of_bus(int(at.get("bus", ""), 16))
        if node is not None:
            out[PciAddress(*(int(src.get(f, ""), 16) for f in ("domain", "bus", "slot", "function")))] = node
    return out
