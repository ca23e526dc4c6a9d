"""From a server as the API gives it (``GET /v1/hosts/{name}/servers``), the host's own discovery and its
NUMA cells to what the agent makes on the host: the libvirt domain spec, the VF settings of its
``direct`` ports and the devices libvirt will not detach itself. Pure functions: no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from epa.domain.address import PciAddress
from epa.domain.device_spec import ClassifiedDevice
from epa.domain.host import NumaCell
from epa.domain.port import Port, VnicType
from epa.domain.server import ClaimedDevice
from epa.errors import EpaError, InvalidInput
from epa.hostnet.vf import VfConfig
from epa.virt import DomainMetadata, DomainSpec, DomainType, HostdevSpec, InterfaceSpec
from epa.wire.server import ServerOut, read_server

Devices = Mapping[PciAddress, ClassifiedDevice]


class ServerBuildError(EpaError):
    """The server cannot be made on this host as the API describes it (a device discovery does not
    see, a port on a function that is not a VF, a malformed server object)."""

    code = "server_build_failed"


@dataclass(frozen=True, slots=True)
class ServerPlan:
    """What provisioning a server means on this host. ``vf_configs`` are the VF settings of its direct
    ports; ``detach`` the devices tagged ``managed=false``, which the agent detaches from their host
    driver itself; ``addresses`` every function the server holds and ``netdevs`` the host interfaces its
    macvtap ports sit on (what no other domain may use)."""

    spec: DomainSpec
    vf_configs: tuple[VfConfig, ...] = ()
    detach: tuple[PciAddress, ...] = ()
    addresses: frozenset[PciAddress] = frozenset()
    netdevs: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Teardown:
    """What removing a server gives back on the host: its VFs reset, its unmanaged devices reattached."""

    vf_resets: tuple[tuple[PciAddress, VfConfig], ...] = ()
    reattach: tuple[PciAddress, ...] = ()


def server_view(obj: object) -> ServerOut:
    """The server as the API answered it, checked against its wire model (``ServerBuildError`` naming the
    field and the value that does not fit): the one place the agent reads a server's JSON."""
    try:
        return read_server(obj)
    except InvalidInput as e:
        where = f"server {obj.get('name')!r} ({obj.get('id')})" if isinstance(obj, Mapping) else "server"
        raise ServerBuildError(f"{where}: {e}") from e


def domain_name(server: ServerOut) -> str:
    """``epa-<server name>-<first 8 characters of its id>``: readable in ``virsh list`` and unique."""
    return f"epa-{server.name}-{server.id[:8]}"


def domain_type_for(uri: str) -> DomainType:
    """``test`` for libvirt's ``test:///`` driver, ``kvm`` for a real hypervisor."""
    scheme = uri.split(":", 1)[0]
    # test+unix:///default?socket=... is the test driver served by a libvirt daemon.
    return DomainType.TEST if scheme.split("+", 1)[0] == "test" else DomainType.KVM


def _where(server: ServerOut) -> str:
    return f"server {server.name!r} ({server.id})"


def claimed_devices(server: ServerOut) -> tuple[ClaimedDevice, ...]:
    """The server's devices in the API's order."""
    out = []
    for i, item in enumerate(server.devices):
        try:
            address = PciAddress.parse(item.address)
        except InvalidInput as e:
            raise ServerBuildError(f"{_where(server)}: devices[{i}]: {e}") from e
        out.append(ClaimedDevice(address, item.request_index, item.request_label, item.port))
    return tuple(out)


def server_ports(server: ServerOut) -> tuple[Port, ...]:
    out = []
    for i, item in enumerate(server.ports):
        try:
            out.append(item.to_port())
        except InvalidInput as e:
            raise ServerBuildError(f"{_where(server)}: ports[{i}]: {e}") from e
    return tuple(out)


def _device(devices: Devices, address: PciAddress, server: ServerOut) -> ClassifiedDevice:
    found = devices.get(address)
    if found is None:
        raise ServerBuildError(f"{_where(server)}: device {address} is not on this host (discovery does not see it)")
    return found


def managed(device: ClassifiedDevice) -> bool:
    """False where the operator's device_spec says ``managed=no``: the agent detaches it, not libvirt."""
    return device.tags.get("managed") != "false"


def vf_location(devices: Devices, address: PciAddress) -> tuple[str, int]:
    """(PF interface, VF index) of the VF at ``address``: the index is its place among the PF's
    ``virtfnN`` links, the interface the PF's first netdev."""
    vf = devices.get(address)
    if vf is None:
        raise ServerBuildError(f"VF {address} is not on this host (discovery does not see it)")
    parent = vf.device.parent_addr
    pf = devices.get(parent) if parent is not None else None
    if parent is None or pf is None:
        raise ServerBuildError(f"device {address} is not a VF of a PF on this host; a direct port needs one")
    if address not in pf.device.vf_addrs:
        raise ServerBuildError(f"VF {address} is not among the VFs of its PF {parent}")
    if pf.device.netdev is None:
        raise ServerBuildError(f"PF {parent} of VF {address} has no network interface to configure the VF through")
    return pf.device.netdev, pf.device.vf_addrs.index(address)


@dataclass(frozen=True, slots=True)
class _Numa:
    """The server's NUMA placement in DomainSpec's terms (all empty: nothing is pinned)."""

    host_nodes: tuple[int, ...] = ()
    cpus_by_node: Mapping[int, int] = field(default_factory=dict)
    memory_by_node: Mapping[int, int] = field(default_factory=dict)
    host_cpus: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    guest_numa: bool = False


def _numa(server: ServerOut, numa_cells: Sequence[NumaCell]) -> _Numa:
    where = _where(server)
    host_nodes = tuple(server.host_nodes)
    if not host_nodes:
        return _Numa()
    cells = {c.node: (c.cpus, c.memory_mb) for c in server.cells}
    if not cells:
        # A server recorded without a split: everything on its first node.
        cells = {host_nodes[0]: (server.flavor.vcpus, server.flavor.memory_mb)}
    host_cells = {c.node: c for c in numa_cells}
    host_cpus = {}
    for node in host_nodes:
        host_cell = host_cells.get(node)
        if host_cell is None or not host_cell.cpus:
            raise ServerBuildError(f"{where}: host NUMA node {node} has no CPUs on this host")
        host_cpus[node] = host_cell.cpus
    cpus_by_node = {n: cells.get(n, (0, 0))[0] for n in host_nodes}
    memory_by_node = {n: cells.get(n, (0, 0))[1] for n in host_nodes}
    # The guest sees one cell per host node when it spans several, as long as each cell has CPUs and memory.
    guest_numa = len(host_nodes) > 1 and all(cpus_by_node.values()) and all(memory_by_node.values())
    return _Numa(host_nodes, cpus_by_node, memory_by_node, host_cpus, guest_numa)


def plan_server(
    server: ServerOut,
    devices: Devices,
    numa_cells: Sequence[NumaCell],
    domain_type: DomainType,
) -> ServerPlan:
    """The domain spec and host settings for ``server``; :class:`ServerBuildError` (or the spec's
    ``InvalidDomainSpec``) naming what does not fit."""
    where = _where(server)
    try:
        domain_uuid = uuid.UUID(server.id)
    except ValueError:
        raise ServerBuildError(f"{where}: id ({server.id!r}) is not a UUID") from None
    flavor = server.flavor
    ports = server_ports(server)
    hostdevs: list[HostdevSpec] = []
    interfaces: list[InterfaceSpec] = []
    vf_configs: list[VfConfig] = []
    detach: list[PciAddress] = []
    netdevs: set[str] = set()
    claimed = claimed_devices(server)
    for item in claimed:
        device = _device(devices, item.address, server)
        is_managed = managed(device)
        node = device.device.numa_node  # puts it on the matching guest node (virt.domain_xml)
        if not is_managed:
            detach.append(item.address)
        if item.port is None:
            hostdevs.append(HostdevSpec(item.address, managed=is_managed, numa_node=node))
            continue
        if not 0 <= item.port < len(ports):
            raise ServerBuildError(f"{where}: device {item.address} backs port {item.port}, which does not exist")
        port = ports[item.port]
        if port.vnic_type is VnicType.DIRECT:
            pf_ifname, index = vf_location(devices, item.address)
            vf_configs.append(
                VfConfig(
                    pf_ifname, index, mac=port.mac, vlan=port.vlan or 0, trusted=port.trusted, spoofchk=not port.trusted
                )
            )
            interfaces.append(
                InterfaceSpec(VnicType.DIRECT, item.address, port.mac, port.vlan, managed=is_managed, numa_node=node)
            )
        elif port.vnic_type is VnicType.DIRECT_PHYSICAL:
            interfaces.append(InterfaceSpec(VnicType.DIRECT_PHYSICAL, item.address, managed=is_managed, numa_node=node))
        else:
            netdev = device.device.netdev
            if netdev is None:
                raise ServerBuildError(
                    f"{where}: macvtap port {item.port} needs a netdev on VF {item.address}; it has none"
                )
            netdevs.add(netdev)
            interfaces.append(InterfaceSpec(VnicType.MACVTAP, item.address, port.mac, port.vlan, netdev=netdev))
    numa = _numa(server, numa_cells)
    spec = DomainSpec(
        name=domain_name(server),
        uuid=domain_uuid,
        domain_type=domain_type,
        vcpus=flavor.vcpus,
        memory_mb=flavor.memory_mb,
        hostdevs=tuple(hostdevs),
        interfaces=tuple(interfaces),
        host_nodes=numa.host_nodes,
        cpus_by_node=numa.cpus_by_node,
        memory_by_node=numa.memory_by_node,
        host_cpus=numa.host_cpus,
        guest_numa=numa.guest_numa,
        metadata=DomainMetadata(server_id=server.id, flavor=flavor.name or "-"),
    )
    return ServerPlan(
        spec=spec,
        vf_configs=tuple(vf_configs),
        detach=tuple(detach),
        addresses=frozenset(d.address for d in claimed),
        netdevs=frozenset(netdevs),
    )


def plan_teardown(server: ServerOut, devices: Devices) -> tuple[Teardown, tuple[str, ...]]:
    """What to give back for ``server``, as far as discovery still knows its devices, and one warning per
    device it cannot say anything about (a teardown must go on past them)."""
    warnings: list[str] = []
    try:
        claimed = claimed_devices(server)
        ports = server_ports(server)
    except ServerBuildError as e:
        return Teardown(), (str(e),)
    resets: list[tuple[PciAddress, VfConfig]] = []
    reattach: list[PciAddress] = []
    for item in claimed:
        device = devices.get(item.address)
        if device is None:
            warnings.append(f"{_where(server)}: device {item.address} is no longer on this host; nothing to give back")
            continue
        if not managed(device):
            reattach.append(item.address)
        if item.port is not None and 0 <= item.port < len(ports) and ports[item.port].vnic_type is VnicType.DIRECT:
            try:
                resets.append((item.address, VfConfig.reset(*vf_location(devices, item.address))))
            except ServerBuildError as e:
                warnings.append(str(e))
    return Teardown(tuple(resets), tuple(reattach)), tuple(warnings)
