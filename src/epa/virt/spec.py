"""What a libvirt domain for one server is made of: typed, validated value objects that the XML builder
turns into a domain document. Every rule the builder relies on is checked here, so a spec that
constructs always renders to XML that libvirt's schema accepts."""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from epa.domain.address import PciAddress
from epa.domain.mac import MAC_RULE, is_mac, is_multicast
from epa.domain.port import VnicType
from epa.errors import InvalidInput

# libvirt's own grammar allows almost any name; the qemu driver turns it into file and cgroup names, so
# EPA keeps to a set that is safe everywhere.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A Linux interface name: at most 15 bytes, no '/', no whitespace.
_NETDEV = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
# Printable text XML 1.0 can carry: no control characters, surrogates or U+FFFE/U+FFFF.
_LABEL = re.compile("[\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]{1,255}")


_E = TypeVar("_E", bound=enum.StrEnum)
_V = TypeVar("_V")


class InvalidDomainSpec(InvalidInput):
    code = "invalid_domain_spec"


class DomainType(enum.StrEnum):
    """The hypervisor driver: ``kvm`` (hardware virtualisation), ``qemu`` (emulation), ``test`` (libvirt's
    in-memory test driver)."""

    KVM = "kvm"
    QEMU = "qemu"
    TEST = "test"


class DiskFormat(enum.StrEnum):
    QCOW2 = "qcow2"
    RAW = "raw"


def _enum(kind: type[_E], value: object, where: str) -> _E:
    if isinstance(value, kind):
        return value
    known = [v.value for v in kind]
    if isinstance(value, str) and value in known:
        return kind(value)
    raise InvalidDomainSpec(f"{where} ({value!r}) must be one of {', '.join(known)}")


def _int(value: object, where: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidDomainSpec(f"{where} ({value!r}) must be an integer")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f"..{maximum}"
        raise InvalidDomainSpec(f"{where} ({value!r}) must be in {minimum}{upper}")
    return value


def _address(value: object, where: str) -> None:
    if not isinstance(value, PciAddress):
        raise InvalidDomainSpec(f"{where} ({value!r}) must be a PciAddress")


def _path(value: object, where: str) -> None:
    # libvirt wants absolute paths; a relative one would resolve against the daemon's working directory.
    if not isinstance(value, str) or not value.startswith("/") or not _LABEL.fullmatch(value):
        raise InvalidDomainSpec(f"{where} ({value!r}) must be an absolute path without control characters")


@dataclass(frozen=True, slots=True)
class HostdevSpec:
    """One PCI function passed through as ``<hostdev>``; ``managed`` lets libvirt bind it to vfio-pci;
    ``numa_node`` is the host NUMA node it sits on (None: unknown), which puts it on the matching guest
    node of a multi-node guest."""

    address: PciAddress
    managed: bool = True
    numa_node: int | None = None

    def __post_init__(self) -> None:
        _address(self.address, "hostdev address")
        if self.numa_node is not None:
            _int(self.numa_node, f"hostdev {self.address}: numa_node", 0, 4095)


@dataclass(frozen=True, slots=True)
class InterfaceSpec:
    """One network port backed by an SR-IOV device.

    ``address`` is the VF (``direct``, ``macvtap``) or the PF (``direct-physical``). ``netdev`` is the
    VF's host interface, needed for ``macvtap`` only. ``mac`` is written for ``direct`` and ``macvtap``;
    a whole PF keeps its own MAC, so for ``direct-physical`` it is informational. A VLAN cannot be put
    on a whole PF through libvirt, so ``direct-physical`` takes none. ``numa_node`` is the device's host
    NUMA node, as for :class:`HostdevSpec` (a ``macvtap`` port is a virtio NIC: it is not placed)."""

    vnic_type: VnicType
    address: PciAddress
    mac: str | None = None
    vlan: int | None = None
    netdev: str | None = None
    managed: bool = True
    numa_node: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "vnic_type", _enum(VnicType, self.vnic_type, "interface vnic_type"))
        _address(self.address, "interface address")
        where = f"interface {self.address}"
        if self.numa_node is not None:
            _int(self.numa_node, f"{where}: numa_node", 0, 4095)
        if self.mac is not None and not is_mac(self.mac):
            raise InvalidDomainSpec(f"{where}: mac ({self.mac!r}) must be {MAC_RULE}")
        if self.mac is not None and is_multicast(self.mac):
            # libvirt's schema (uniMacAddr) and the kernel refuse a group address on a NIC.
            raise InvalidDomainSpec(f"{where}: mac ({self.mac!r}) is a multicast address; a NIC needs a unicast one")
        if self.vlan is not None:
            _int(self.vlan, f"{where}: vlan", 1, 4094)
            if self.vnic_type is VnicType.DIRECT_PHYSICAL:
                raise InvalidDomainSpec(f"{where}: vlan ({self.vlan}) cannot be set on a direct-physical port")
        if self.vnic_type is VnicType.MACVTAP:
            if self.netdev is None or not isinstance(self.netdev, str) or not _NETDEV.fullmatch(self.netdev):
                raise InvalidDomainSpec(f"{where}: netdev ({self.netdev!r}) must be the VF's interface name")
        elif self.netdev is not None:
            raise InvalidDomainSpec(f"{where}: netdev ({self.netdev!r}) applies to macvtap ports only")


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """The boot disk: an image file on the host."""

    path: str
    format: DiskFormat = DiskFormat.QCOW2

    def __post_init__(self) -> None:
        _path(self.path, "disk path")
        object.__setattr__(self, "format", _enum(DiskFormat, self.format, "disk format"))


@dataclass(frozen=True, slots=True)
class KernelSpec:
    """Direct kernel boot: QEMU loads ``kernel`` and ``initrd`` itself, with ``cmdline``."""

    kernel: str
    initrd: str
    cmdline: str = ""

    def __post_init__(self) -> None:
        _path(self.kernel, "kernel path")
        _path(self.initrd, "initrd path")
        if not isinstance(self.cmdline, str) or (self.cmdline and not _LABEL.fullmatch(self.cmdline)):
            raise InvalidDomainSpec(f"kernel cmdline ({self.cmdline!r}) must be printable text")


@dataclass(frozen=True, slots=True)
class DomainMetadata:
    """What ties a domain to EPA: the server it runs and the flavor it was built from."""

    server_id: str
    flavor: str

    def __post_init__(self) -> None:
        for name, value in (("server_id", self.server_id), ("flavor", self.flavor)):
            if not isinstance(value, str) or not _LABEL.fullmatch(value):
                raise InvalidDomainSpec(f"metadata {name} ({value!r}) must be 1-255 printable characters")


def _frozen_map(value: Mapping[int, _V]) -> Mapping[int, _V]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """Everything needed to write one server's domain XML.

    ``host_nodes`` are the host NUMA nodes the scheduler chose, in guest-cell order; ``cpus_by_node`` and
    ``memory_by_node`` split the vCPUs and MiB over them, and ``host_cpus`` lists each node's CPUs for
    pinning. With no host nodes (a host without NUMA information) nothing is pinned. ``guest_numa``
    also shows the guest one NUMA cell per host node."""

    name: str
    uuid: uuid.UUID
    domain_type: DomainType
    vcpus: int
    memory_mb: int
    host_nodes: tuple[int, ...] = ()
    cpus_by_node: Mapping[int, int] = field(default_factory=dict)
    memory_by_node: Mapping[int, int] = field(default_factory=dict)
    host_cpus: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    guest_numa: bool = False
    hostdevs: tuple[HostdevSpec, ...] = ()
    interfaces: tuple[InterfaceSpec, ...] = ()
    disk: DiskSpec | None = None
    # A read-only raw disk (the cloud-init NoCloud seed), a kernel booted directly, and the file the
    # serial console is logged to.
    seed: str | None = None
    kernel: KernelSpec | None = None
    console_log: str | None = None
    emulator: str | None = None
    machine: str | None = None
    metadata: DomainMetadata | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InvalidDomainSpec(f"domain name ({self.name!r}) must be 1-128 of [A-Za-z0-9._-], alphanumeric first")
        if isinstance(self.uuid, str):
            try:
                object.__setattr__(self, "uuid", uuid.UUID(self.uuid))
            except ValueError:
                raise InvalidDomainSpec(f"domain uuid ({self.uuid!r}) is not a UUID") from None
        elif not isinstance(self.uuid, uuid.UUID):
            raise InvalidDomainSpec(f"domain uuid ({self.uuid!r}) is not a UUID")
        object.__setattr__(self, "domain_type", _enum(DomainType, self.domain_type, "domain_type"))
        _int(self.vcpus, "vcpus", 1, 4096)
        _int(self.memory_mb, "memory_mb", 1)
        object.__setattr__(self, "host_nodes", tuple(self.host_nodes))
        object.__setattr__(self, "cpus_by_node", _frozen_map(self.cpus_by_node))
        object.__setattr__(self, "memory_by_node", _frozen_map(self.memory_by_node))
        object.__setattr__(self, "host_cpus", _frozen_map({n: tuple(c) for n, c in self.host_cpus.items()}))
        object.__setattr__(self, "hostdevs", tuple(self.hostdevs))
        object.__setattr__(self, "interfaces", tuple(self.interfaces))
        self._check_numa()
        self._check_devices()
        if self.emulator is not None:
            _path(self.emulator, "emulator")
        for what, path in (("seed", self.seed), ("console_log", self.console_log)):
            if path is not None:
                _path(path, what)
        if self.kernel is not None and not isinstance(self.kernel, KernelSpec):
            raise InvalidDomainSpec(f"kernel ({self.kernel!r}) must be a KernelSpec")
        if self.machine is not None and (not isinstance(self.machine, str) or not _NAME.fullmatch(self.machine)):
            raise InvalidDomainSpec(f"machine ({self.machine!r}) is not a machine type name")

    def _check_numa(self) -> None:
        nodes = self.host_nodes
        for node in nodes:
            _int(node, "host_nodes entry", 0, 4095)
        if len(set(nodes)) != len(nodes):
            raise InvalidDomainSpec(f"host_nodes ({list(nodes)}) names a node twice")
        for what, split, total in (
            ("cpus_by_node", self.cpus_by_node, self.vcpus),
            ("memory_by_node", self.memory_by_node, self.memory_mb),
        ):
            if set(split) != set(nodes):
                raise InvalidDomainSpec(f"{what} nodes ({sorted(split)}) must be the host_nodes ({sorted(nodes)})")
            # A guest cell needs CPUs and memory of its own; without guest cells a node may go unused.
            floor = 1 if self.guest_numa else 0
            for node, amount in split.items():
                _int(amount, f"{what}[{node}]", floor)
            if nodes and sum(split.values()) != total:
                raise InvalidDomainSpec(f"{what} ({dict(split)}) adds up to {sum(split.values())}, not {total}")
        for node in nodes:
            cpus = self.host_cpus.get(node)
            if not cpus:
                raise InvalidDomainSpec(f"host_cpus has no CPUs for host node {node}")
            for cpu in cpus:
                _int(cpu, f"host_cpus[{node}] entry", 0, 65535)
        if self.guest_numa and not nodes:
            raise InvalidDomainSpec("guest_numa needs at least one host node in host_nodes")

    def _check_devices(self) -> None:
        seen: set[PciAddress] = set()
        for dev in self.hostdevs:
            if not isinstance(dev, HostdevSpec):
                raise InvalidDomainSpec(f"hostdevs entry ({dev!r}) must be a HostdevSpec")
        for port in self.interfaces:
            if not isinstance(port, InterfaceSpec):
                raise InvalidDomainSpec(f"interfaces entry ({port!r}) must be an InterfaceSpec")
        # A macvtap VF stays on its host driver and is not passed through, but it is still this
        # server's device: two ports, or a port and a hostdev, on one function is a claim bug.
        for address in [d.address for d in self.hostdevs] + [p.address for p in self.interfaces]:
            if address in seen:
                raise InvalidDomainSpec(f"device {address} is given twice")
            seen.add(address)

    def vcpu_nodes(self) -> tuple[int, ...]:
        """The host node of each vCPU, in vCPU order: the first ``cpus_by_node[host_nodes[0]]`` vCPUs
        sit on the first node, and so on (empty when nothing is pinned)."""
        return tuple(node for node in self.host_nodes for _ in range(self.cpus_by_node[node]))
