"""What a server asks of a host: vCPUs, memory, guest NUMA nodes and device requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from epa.domain.alias import Alias, NumaPolicy
from epa.domain.device import DevType, TagPairs
from epa.domain.flavor import Flavor
from epa.domain.pci_group import PCI_GROUP_KEY, Relation
from epa.domain.port import Port, VnicType
from epa.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Matcher:
    """One acceptable kind of device: ids, type and the device_spec tags it must carry."""

    vendor_id: str | None = None
    product_id: str | None = None
    dev_type: DevType | None = None
    tags: TagPairs = ()
    needs_netdev: bool = False
    remote_managed: bool = False

    def matches(
        self, vendor_id: str, product_id: str, dev_type: DevType, tags: Mapping[str, str], has_netdev: bool
    ) -> bool:
        if self.vendor_id is not None and vendor_id != self.vendor_id:
            return False
        if self.product_id is not None and product_id != self.product_id:
            return False
        if self.dev_type is not None and dev_type is not self.dev_type:
            return False
        if self.needs_netdev and not has_netdev:
            return False
        # Remote-managed VFs (their control plane is on a DPU) go only to requests that ask for them.
        if (tags.get("remote_managed") == "true") != self.remote_managed:
            return False
        return all(tags.get(k) == v for k, v in self.tags)

    def describe(self) -> str:
        ids = f"{self.vendor_id or '*'}:{self.product_id or '*'}"
        kind = {DevType.VF: "VF", DevType.PF: "PF", DevType.PCI: "PCI device", None: "device"}[self.dev_type]
        extra = ",".join(f"{k}={v}" for k, v in self.tags)
        text = f"{ids} {kind}" if self.vendor_id or self.product_id else kind
        return f"{text} [{extra}]" if extra else text


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """``count`` devices, each matching one of ``alternatives``, placed under ``numa_policy``."""

    label: str
    count: int
    alternatives: tuple[Matcher, ...]
    numa_policy: NumaPolicy
    # The index of the port this request is for; None for a flavor's alias.
    port: int | None = None

    def describe(self) -> str:
        return " or ".join(dict.fromkeys(m.describe() for m in self.alternatives))


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """A ``pci_group`` relation over device requests: ``members`` index ``ServerRequest.devices``."""

    relation: Relation
    members: tuple[int, ...]
    text: str


@dataclass(frozen=True, slots=True)
class ServerRequest:
    vcpus: int
    memory_mb: int
    numa_nodes: int
    devices: tuple[DeviceRequest, ...]
    # sha256 of each part of the image the server boots (empty: none): hosts whose cache holds them all
    # are preferred, all else equal (weigh.host_score).
    image_parts: frozenset[str] = frozenset()
    groups: tuple[GroupRequest, ...] = ()

    @property
    def wants_devices(self) -> bool:
        return bool(self.devices)


def port_request(index: int, port: Port, policy: NumaPolicy) -> DeviceRequest:
    """A port asks for one device on its physical network: a VF (``direct``, ``macvtap`` with a netdev)
    or a whole PF (``direct-physical``)."""
    tags: list[tuple[str, str]] = [("physical_network", port.physical_network)]
    if port.trusted:
        tags.append(("trusted", "true"))
    dev_type = DevType.PF if port.vnic_type is VnicType.DIRECT_PHYSICAL else DevType.VF
    matcher = Matcher(dev_type=dev_type, tags=tuple(sorted(tags)), needs_netdev=port.vnic_type is VnicType.MACVTAP)
    label = f"port {index} ({port.vnic_type.value} on {port.physical_network})"
    return DeviceRequest(label=label, count=1, alternatives=(matcher,), numa_policy=policy, port=index)


def build_request(flavor: Flavor, aliases: Mapping[str, Alias], ports: Sequence[Port] = ()) -> ServerRequest:
    """The scheduler's request for a flavor (and its aliases) plus ports. A flavor's ``numa_policy``
    overrides its aliases' (Nova's ``hw:pci_numa_affinity_policy``); ports use it too, else ``legacy``."""
    devices: list[DeviceRequest] = []
    for req in flavor.pci_requests:
        alias = aliases.get(req.alias)
        if alias is None:
            raise InvalidInput(f"flavor {flavor.name}: alias {req.alias!r} is not defined")
        alternatives = tuple(
            Matcher(
                vendor_id=s.vendor_id,
                product_id=s.product_id,
                dev_type=s.device_type,
                tags=s.tags,
                remote_managed=dict(s.tags).get("remote_managed") == "true",
            )
            for s in alias.specs
        )
        devices.append(
            DeviceRequest(f"alias {alias.name}", req.count, alternatives, flavor.numa_policy or alias.numa_policy)
        )
    first_port = len(devices)
    for i, port in enumerate(ports):
        devices.append(port_request(i, port, flavor.numa_policy or NumaPolicy.LEGACY))
    return ServerRequest(
        vcpus=flavor.vcpus,
        memory_mb=flavor.memory_mb,
        numa_nodes=flavor.numa_nodes,
        devices=tuple(devices),
        groups=_groups(flavor, first_port, len(ports)),
    )


def _groups(flavor: Flavor, first_port: int, ports: int) -> tuple[GroupRequest, ...]:
    """The flavor's ``pci_group`` over this server's requests; a ``port:N`` past its ports is refused."""
    by_alias = {r.alias: i for i, r in enumerate(flavor.pci_requests)}
    out: list[GroupRequest] = []
    for group in flavor.pci_groups:
        members: list[int] = []
        for member in group.members:
            if member.startswith("port:"):
                n = int(member[5:])
                if n >= ports:
                    raise InvalidInput(
                        f"flavor {flavor.name}: {PCI_GROUP_KEY} ({flavor.pci_group!r}) names {member}, "
                        f"but the server has {ports} port(s)"
                    )
                members.append(first_port + n)
            else:
                members.append(by_alias[member])
        out.append(GroupRequest(group.relation, tuple(members), group.text))
    return tuple(out)
