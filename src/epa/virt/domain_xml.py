"""Turn a :class:`~epa.virt.spec.DomainSpec` into libvirt domain XML, built as an lxml tree (never by
pasting strings), in the shapes libvirt's own schema (``domain.rng``) accepts."""

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


def _hostdev(devices: etree._Element, address: PciAddress, managed: bool) -> None:
    hostdev = _sub(devices, "hostdev", mode="subsystem", type="pci", managed=_yes_no(managed))
    _sub(_sub(hostdev, "source"), "address", **pci_address_attrs(address))


def _vlan(iface: etree._Element, vlan: int | None) -> None:
    if vlan is not None:
        _sub(_sub(iface, "vlan"), "tag", id=str(vlan))


def _interface(devices: etree._Element, port: InterfaceSpec) -> None:
    if port.vnic_type is VnicType.DIRECT_PHYSICAL:
        # A whole PF is not an SR-IOV VF libvirt can configure as a NIC; it goes in like any device.
        _hostdev(devices, port.address, port.managed)
        return
    if port.vnic_type is VnicType.DIRECT:
        iface = _sub(devices, "interface", type="hostdev", managed=_yes_no(port.managed))
        if port.mac is not None:
            _sub(iface, "mac", address=port.mac)
        _sub(_sub(iface, "source"), "address", type="pci", **pci_address_attrs(port.address))
        _vlan(iface, port.vlan)
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
    for port in spec.interfaces:
        _interface(devices, port)
    for dev in spec.hostdevs:
        _hostdev(devices, dev.address, dev.managed)
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
