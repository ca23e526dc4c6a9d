"""Turn a :class:`~epa.virt.spec.DomainSpec` into libvirt domain XML, built as an lxml tree (never by
pasting strings), in the shapes libvirt's own schema (``domain.rng``) accepts.

A guest of several NUMA nodes gets, for each of its nodes that has passed-through devices local to the
matching host node, an expander bus whose ``<target><node>`` is that guest node, and those devices on
it, so the guest OS sees their locality: on q35 (and the test driver) a ``pcie-expander-bus`` with a
``pcie-root-port`` per device; on i440fx machines a ``pci-expander-bus`` with the devices in its slots."""

from __future__ import annotations

from lxml import etree

from epa.domain.address import PciAddress
from epa.domain.host import format_cpulist
from epa.domain.port import VnicType
from epa.virt.spec import DomainSpec, DomainType, InterfaceSpec

METADATA_NS = "urn:x-epa:libvirt:domain:1"
METADATA_PREFIX = "epa"

# Virtio is the NIC model every current guest kernel drives without extra drivers.
_MACVTAP_MODEL = "virtio"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def pci_address_attrs(address: PciAddress) -> dict[str, str]:
    """The attributes libvirt itself writes for a PCI address (``virPCIDeviceAddressFormat``)."""
    return {
        "domain": f"0x{address.domain:04x}",
        "bus": f"0x{address.bus:02x}",
        "slot": f"0x{address.slot:02x}",
        "function": f"0x{address.function:x}",
    }


# Guest PCI address attributes per host device address: where numa_buses put each local device.
GuestSlots = dict[PciAddress, dict[str, str]]
# The first expander's bus number: far above the buses libvirt gives pcie-root's own root ports.
_FIRST_BUS_NR = 0x80
_LAST_BUS_NR = 0xFF


def _guest_address(parent: etree._Element, slots: GuestSlots, address: PciAddress) -> None:
    where = slots.get(address)
    if where is not None:
        _sub(parent, "address", type="pci", **where)


def _hostdev(devices: etree._Element, address: PciAddress, managed: bool, slots: GuestSlots) -> None:
    hostdev = _sub(devices, "hostdev", mode="subsystem", type="pci", managed=_yes_no(managed))
    _sub(_sub(hostdev, "source"), "address", **pci_address_attrs(address))
    _guest_address(hostdev, slots, address)


def _is_q35(spec: DomainSpec) -> bool:
    """PCI Express expanders need a q35 machine; the test driver takes either, and an unnamed machine
    is the hypervisor's default (i440fx for QEMU on x86)."""
    if spec.machine is None:
        return spec.domain_type is DomainType.TEST
    return "q35" in spec.machine


def numa_buses(devices: etree._Element, spec: DomainSpec) -> GuestSlots:
    """Write the expander buses of a multi-node guest and say where each local device goes."""
    if not spec.guest_numa:
        return {}
    cell_of = {node: cell for cell, node in enumerate(spec.host_nodes)}
    local: dict[int, list[PciAddress]] = {}
    placed = [(d.address, d.numa_node) for d in spec.hostdevs] + [
        (p.address, p.numa_node) for p in spec.interfaces if p.vnic_type is not VnicType.MACVTAP
    ]
    for address, node in placed:
        if node is not None and node in cell_of:
            local.setdefault(cell_of[node], []).append(address)
    pcie = _is_q35(spec)
    slots: GuestSlots = {}
    index = 1  # pcie-root / pci-root is index 0; libvirt numbers the controllers it adds after ours
    bus_nr = _FIRST_BUS_NR
    expanders: list[tuple[int, int, list[PciAddress]]] = []
    for cell in sorted(local):
        # An expander's own bus and one per root port below it: the next expander starts above them.
        need = 1 + (len(local[cell]) if pcie else 0)
        if bus_nr + need - 1 > _LAST_BUS_NR:
            break  # out of bus numbers: the rest stay on the root bus, without a node
        expander = _sub(
            devices,
            "controller",
            type="pci",
            index=str(index),
            model="pcie-expander-bus" if pcie else "pci-expander-bus",
        )
        target = _sub(expander, "target", busNr=str(bus_nr))
        _sub(target, "node", str(cell))
        expanders.append((index, cell, local[cell]))
        index += 1
        bus_nr += need
    for expander_index, _cell, addresses in expanders:
        for slot, address in enumerate(addresses):
            at = {"domain": "0x0000", "bus": f"0x{expander_index:02x}", "slot": f"0x{slot:02x}", "function": "0x0"}
            if not pcie:
                slots[address] = at
                continue
            port = _sub(devices, "controller", type="pci", index=str(index), model="pcie-root-port")
            _sub(port, "address", type="pci", **at)
            slots[address] = {"domain": "0x0000", "bus": f"0x{index:02x}", "slot": "0x00", "function": "0x0"}
            index += 1
    return slots


def _vlan(iface: etree._Element, vlan: int | None) -> None:
    if vlan is not None:
        _sub(_sub(iface, "vlan"), "tag", id=str(vlan))


def _interface(devices: etree._Element, port: InterfaceSpec, slots: GuestSlots) -> None:
    if port.vnic_type is VnicType.DIRECT_PHYSICAL:
        # A whole PF is not an SR-IOV VF libvirt can configure as a NIC; it goes in like any device.
        _hostdev(devices, port.address, port.managed, slots)
        return
    if port.vnic_type is VnicType.DIRECT:
        iface = _sub(devices, "interface", type="hostdev", managed=_yes_no(port.managed))
        if port.mac is not None:
            _sub(iface, "mac", address=port.mac)
        _sub(_sub(iface, "source"), "address", type="pci", **pci_address_attrs(port.address))
        _vlan(iface, port.vlan)
        _guest_address(iface, slots, port.address)
        return
    # macvtap: the VF stays on its host driver and the guest gets a virtio NIC over its netdev;
    # passthrough mode hands the VF's MAC and VLAN over to the guest.
    assert port.netdev is not None  # noqa: S101 - InterfaceSpec guarantees it for macvtap
    iface = _sub(devices, "interface", type="direct")
    if port.mac is not None:
        _sub(iface, "mac", address=port.mac)
    _sub(iface, "source", dev=port.netdev, mode="passthrough")
    _vlan(iface, port.vlan)
    _sub(iface, "model", type=_MACVTAP_MODEL)


def _metadata(root: etree._Element, spec: DomainSpec) -> None:
    if spec.metadata is None:
        return
    metadata = _sub(root, "metadata")
    server = etree.SubElement(
        metadata, f"{{{METADATA_NS}}}server", {"id": spec.metadata.server_id}, nsmap={METADATA_PREFIX: METADATA_NS}
    )
    etree.SubElement(server, f"{{{METADATA_NS}}}flavor", {"name": spec.metadata.flavor})


def _cpu_and_memory(root: etree._Element, spec: DomainSpec) -> None:
    _sub(root, "memory", str(spec.memory_mb), unit="MiB")
    if not spec.host_nodes:
        _sub(root, "vcpu", str(spec.vcpus), placement="static")
        return
    all_cpus = [cpu for node in spec.host_nodes for cpu in spec.host_cpus[node]]
    _sub(root, "vcpu", str(spec.vcpus), placement="static", cpuset=format_cpulist(all_cpus))
    # Each vCPU floats over its own node's CPUs (not 1:1 pinning): the scheduler may overcommit
    # CPUs, and what matters here is that vCPUs, memory and devices share a node.
    cputune = _sub(root, "cputune")
    for vcpu, node in enumerate(spec.vcpu_nodes()):
        _sub(cputune, "vcpupin", vcpu=str(vcpu), cpuset=format_cpulist(spec.host_cpus[node]))
    numatune = _sub(root, "numatune")
    _sub(numatune, "memory", mode="strict", nodeset=format_cpulist(spec.host_nodes))
    if spec.guest_numa:
        for cell, node in enumerate(spec.host_nodes):
            _sub(numatune, "memnode", cellid=str(cell), mode="strict", nodeset=str(node))


def _os(root: etree._Element, spec: DomainSpec) -> None:
    os_el = _sub(root, "os")
    type_el = _sub(os_el, "type", "hvm")
    if spec.machine is not None:
        type_el.set("machine", spec.machine)
    if spec.kernel is not None:
        _sub(os_el, "kernel", spec.kernel.kernel)
        _sub(os_el, "initrd", spec.kernel.initrd)
        if spec.kernel.cmdline:
            _sub(os_el, "cmdline", spec.kernel.cmdline)


def _features(root: etree._Element, spec: DomainSpec) -> None:
    if spec.domain_type is not DomainType.TEST:
        # Without ACPI a guest cannot be shut down gracefully; the APIC is what modern kernels expect.
        features = _sub(root, "features")
        _sub(features, "acpi")
        _sub(features, "apic")


def _guest_numa(root: etree._Element, spec: DomainSpec) -> None:
    if not spec.guest_numa:
        return
    # No <cpu mode=...>: host-passthrough needs a CPU model the host can give, and the default
    # (custom, the hypervisor's base model) is what works everywhere, nested virtualisation included.
    numa = _sub(_sub(root, "cpu"), "numa")
    first = 0
    for cell, node in enumerate(spec.host_nodes):
        count = spec.cpus_by_node[node]
        cpus = format_cpulist(range(first, first + count))
        first += count
        _sub(numa, "cell", id=str(cell), cpus=cpus, memory=str(spec.memory_by_node[node]), unit="MiB")


def _devices(root: etree._Element, spec: DomainSpec) -> None:
    devices = _sub(root, "devices")
    if spec.emulator is not None:
        _sub(devices, "emulator", spec.emulator)
    if spec.disk is not None:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=spec.disk.format.value)
        _sub(disk, "source", file=spec.disk.path)
        _sub(disk, "target", dev="vda", bus="virtio")
    if spec.seed is not None:
        # virtio on every machine type (an IDE or SATA CD-ROM depends on it); cloud-init finds the seed
        # by its label on any block device.
        seed = _sub(devices, "disk", type="file", device="disk")
        _sub(seed, "driver", name="qemu", type="raw")
        _sub(seed, "source", file=spec.seed)
        _sub(seed, "target", dev="vdb", bus="virtio")
        _sub(seed, "readonly")
    if spec.console_log is not None:
        # QEMU writes the guest's serial output to the file itself: no pty nobody reads, no virtlogd.
        serial = _sub(devices, "serial", type="file")
        _sub(serial, "source", path=spec.console_log, append="on")
        _sub(serial, "target", port="0")
    slots = numa_buses(devices, spec)
    for port in spec.interfaces:
        _interface(devices, port, slots)
    for dev in spec.hostdevs:
        _hostdev(devices, dev.address, dev.managed, slots)
    if spec.hostdevs or spec.interfaces:
        # VFIO pins all guest memory, so a balloon could never give any back to the host.
        _sub(devices, "memballoon", model="none")


def build_domain_tree(spec: DomainSpec) -> etree._Element:
    """The domain document for ``spec`` as an lxml element (``<domain>``)."""
    root = etree.Element("domain", type=spec.domain_type.value)
    _sub(root, "name", spec.name)
    _sub(root, "uuid", str(spec.uuid))
    _metadata(root, spec)
    _cpu_and_memory(root, spec)
    _os(root, spec)
    _features(root, spec)
    _guest_numa(root, spec)
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    _devices(root, spec)
    return root


def build_domain_xml(spec: DomainSpec) -> str:
    """The domain XML for ``spec``, indented, as ``virDomainDefineXML`` takes it."""
    root = build_domain_tree(spec)
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode") + "\n"
