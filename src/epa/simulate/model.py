"""The description of a simulated host: its root complexes, bridges and functions."""

from __future__ import annotations

from dataclasses import dataclass, field

from epa.domain.address import PciAddress


@dataclass(slots=True)
class SimNet:
    name: str
    mac: str
    operstate: str = "up"
    phys_switch_id: str | None = None
    phys_port_name: str | None = None


@dataclass(slots=True)
class SimFunction:
    """One PCI function. ``upstream`` is the bridge it sits behind (None: on the root bus of
    ``root``). A VF names its PF in ``physfn``; a PF lists its VFs by being named by them."""

    address: PciAddress
    vendor: str
    device: str
    class_code: str
    root: str
    upstream: PciAddress | None = None
    subsystem_vendor: str | None = None
    subsystem_device: str | None = None
    numa_node: int | None = -1
    driver: str | None = None
    iommu_group: int | None = None
    netdevs: list[SimNet] = field(default_factory=list)
    sriov_totalvfs: int | None = None
    physfn: PciAddress | None = None
    vendor_name: str = ""
    product_name: str = ""


@dataclass(slots=True)
class SimHost:
    name: str
    functions: list[SimFunction] = field(default_factory=list)
    # NUMA node id -> (cpulist, memory in KiB); empty for a host without NUMA information.
    numa_cells: dict[int, tuple[str, int]] = field(default_factory=dict)
    # NUMA node id -> socket (physical package) id; a node not named here sits on the socket of its id.
    node_sockets: dict[int, int] = field(default_factory=dict)
    # The CPUs (a cpulist, all on socket 0) of a host without numa_cells; with cells, the CPUs are theirs.
    online_cpus: str = "0-3"

    def socket_of(self, node: int) -> int:
        return self.node_sockets.get(node, node)

    def function(self, address: PciAddress | str) -> SimFunction:
        want = PciAddress.parse(address) if isinstance(address, str) else address
        for fn in self.functions:
            if fn.address == want:
                return fn
        raise KeyError(str(want))

    def vfs_of(self, pf: PciAddress) -> list[SimFunction]:
        return sorted((f for f in self.functions if f.physfn == pf), key=lambda f: f.address)

    def chain(self, fn: SimFunction) -> list[SimFunction]:
        """The bridges above ``fn``, root-most first."""
        out: list[SimFunction] = []
        up = fn.upstream
        while up is not None:
            bridge = self.function(up)
            out.append(bridge)
            up = bridge.upstream
        out.reverse()
        return out
