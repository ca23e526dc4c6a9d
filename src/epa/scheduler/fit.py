"""Fit one server request on one host: guest NUMA cells for its CPUs and memory, and devices for its
requests under their NUMA policies, never granting a PF together with one of its own VFs.

The search is bounded: cell combinations of the guest's node count (hosts have few cells), and for
the devices a greedy pick per request in a few request orders (at most ``MAX_ORDERS``)."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from epa.domain.address import PciAddress
from epa.domain.alias import NumaPolicy
from epa.domain.device import DevType
from epa.scheduler.host_state import HostState, Pool, Slot
from epa.scheduler.request import DeviceRequest, ServerRequest

MAX_ORDERS = 24
MAX_REASONS = 3


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a server goes: ``nodes[i]`` is the host NUMA node of guest node i; ``devices[r]`` are the
    addresses granted to device request r; ``affinity_misses`` counts devices known to sit off the
    guest's nodes (allowed by ``preferred`` and ``socket``, but worse)."""

    host: str
    nodes: tuple[int, ...]
    cpus_by_node: dict[int, int]
    memory_by_node: dict[int, int]
    devices: tuple[tuple[PciAddress, ...], ...]
    affinity_misses: int = 0

    @property
    def all_devices(self) -> tuple[PciAddress, ...]:
        return tuple(a for group in self.devices for a in group)


@dataclass(frozen=True, slots=True)
class Rejection:
    host: str
    reason: str


def _where(policy: NumaPolicy, nodes: Sequence[int], sockets: set[int]) -> str:
    node_text = f"NUMA node {nodes[0]}" if len(nodes) == 1 else f"NUMA nodes {','.join(map(str, nodes))}"
    if policy is NumaPolicy.SOCKET:
        return f"socket {','.join(map(str, sorted(sockets)))}" if sockets else node_text
    if policy is NumaPolicy.LEGACY:
        return f"{node_text} (or without NUMA affinity)"
    if policy is NumaPolicy.PREFERRED:
        return "the host"
    return node_text


def _allowed(pool: Pool, policy: NumaPolicy, nodes: set[int], sockets: set[int], host: HostState) -> bool:
    numa = pool.numa_node
    if policy is NumaPolicy.PREFERRED:
        return True
    if policy is NumaPolicy.LEGACY:
        return numa is None or numa in nodes
    if policy is NumaPolicy.SOCKET:
        if numa is None:
            return False
        socket = host.socket_of(numa)
        return numa in nodes or (socket is not None and socket in sockets)
    return numa is not None and numa in nodes


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class _Picker:
    """Greedy device choice for one cell combination and one order of the requests."""

    def __init__(self, host: HostState, nodes: set[int], salt: int = 0) -> None:
        self.host = host
        self.nodes = nodes
        self.salt = salt
        self.taken: set[PciAddress] = set()
        self.whole_pfs: set[PciAddress] = set()
        self.split_here: dict[PciAddress, int] = {}
        self.misses = 0

    def _usable(self, slot: Slot) -> bool:
        if slot.address in self.taken:
            return False
        if slot.dev_type is DevType.PF and slot.address in self.split_here:
            return False  # we already gave one of its VFs away in this placement
        return not (slot.parent_addr is not None and slot.parent_addr in self.whole_pfs)

    def _rank(self, pool: Pool) -> tuple[int, int, int]:
        numa = pool.numa_node
        affine = 0 if numa is not None and numa in self.nodes else (1 if numa is None else 2)
        parent = pool.parent_addr
        if parent is None:
            return (affine, 0, 0)
        # Keep whole PFs free for direct-physical: take VFs from PFs that are already split, then from
        # the PF with the fewest free VFs left.
        split = self.host.vfs_in_use.get(parent, 0) + self.split_here.get(parent, 0)
        return (affine, 0 if split else 1, pool.count)

    def _offset(self, pool: Pool) -> int:
        """Which of a pool's equivalent devices to take. Salt 0: the lowest address. Another salt (one per
        API process) spreads processes over the pool, so that two of them scheduling from the same view
        rarely race for the same VF; the same salt always gives the same choice."""
        if not self.salt:
            return 0
        return zlib.crc32(f"{self.salt}/{self.host.name}/{pool.key}".encode())

    def pick(self, pools: list[Pool], count: int) -> list[PciAddress] | None:
        out: list[PciAddress] = []
        for _ in range(count):
            chosen: Slot | None = None
            for pool in sorted(pools, key=lambda p: (self._rank(p), p.slots[0].address)):
                usable = [s for s in pool.slots if self._usable(s)]
                if usable:
                    chosen = usable[self._offset(pool) % len(usable)]
                    break
            if chosen is None:
                return None
            self.taken.add(chosen.address)
            if chosen.dev_type is DevType.PF:
                self.whole_pfs.add(chosen.address)
            if chosen.parent_addr is not None:
                self.split_here[chosen.parent_addr] = self.split_here.get(chosen.parent_addr, 0) + 1
            if chosen.numa_node is not None and chosen.numa_node not in self.nodes:
                self.misses += 1  # known to be remote; unknown affinity is not counted
            out.append(chosen.address)
        return out


def _assign(
    host: HostState,
    requests: Sequence[DeviceRequest],
    eligible: Sequence[list[Pool]],
    nodes: tuple[int, ...],
    salt: int = 0,
) -> tuple[tuple[tuple[PciAddress, ...], ...], int] | str:
    """Devices for every request on these guest nodes, or the reason there are none."""
    node_set = set(nodes)
    sockets = {s for n in nodes if (s := host.socket_of(n)) is not None}
    allowed: list[list[Pool]] = []
    for req, pools in zip(requests, eligible, strict=True):
        ok = [p for p in pools if _allowed(p, req.numa_policy, node_set, sockets, host)]
        free = sum(p.count for p in ok)
        if free < req.count:
            return (
                f"{_where(req.numa_policy, nodes, sockets)} has {free} free {req.describe()}, "
                f"{req.count} requested (policy {req.numa_policy.value})"
            )
        allowed.append(ok)
    # Scarcest first; other orders only when the greedy pick fails (PF/VF conflicts, shared pools).
    first = sorted(range(len(requests)), key=lambda i: sum(p.count for p in allowed[i]) - requests[i].count)
    orders = itertools.islice(itertools.chain([tuple(first)], itertools.permutations(range(len(requests)))), MAX_ORDERS)
    for order in orders:
        picker = _Picker(host, node_set, salt)
        chosen: dict[int, list[PciAddress]] = {}
        for i in order:
            got = picker.pick(allowed[i], requests[i].count)
            if got is None:
                break
            chosen[i] = got
        else:
            return tuple(tuple(chosen[i]) for i in range(len(requests))), picker.misses
    labels = ", ".join(r.label for r in requests)
    return f"the free devices cannot serve {labels} together (a PF and its own VFs are never both granted)"


def eligible_pools(host: HostState, request: ServerRequest) -> list[list[Pool]]:
    pools = host.pools()
    return [
        [
            p
            for p in pools
            if any(m.matches(p.key[0], p.key[1], p.key[2], dict(p.key[5]), p.key[6]) for m in r.alternatives)
        ]
        for r in request.devices
    ]


def fit(
    host: HostState,
    request: ServerRequest,
    *,
    now: float,
    alive_seconds: float,
    spread: bool = True,
    salt: int = 0,
) -> Placement | Rejection:
    """Place ``request`` on ``host`` or say, in words, why it cannot go there."""
    name = host.name
    if not host.enabled:
        return Rejection(name, "host is disabled")
    if host.last_report is None:
        return Rejection(name, "its agent has never reported")
    age = now - host.last_report
    if age > alive_seconds:
        return Rejection(name, f"its agent last reported {age:.0f} s ago (limit {alive_seconds:.0f} s)")
    if not host.cells:
        return Rejection(name, "it reported no NUMA cells (CPUs and memory)")
    if host.free_cpus < request.vcpus:
        return Rejection(name, f"{host.free_cpus} free vCPUs, {request.vcpus} requested")
    if host.free_memory_mb < request.memory_mb:
        return Rejection(name, f"{host.free_memory_mb} MB free memory, {request.memory_mb} MB requested")
    if request.numa_nodes > len(host.cells):
        return Rejection(name, f"{len(host.cells)} NUMA node(s), the flavor asks for {request.numa_nodes}")
    eligible = eligible_pools(host, request)
    for req, pools in zip(request.devices, eligible, strict=True):
        free = sum(p.count for p in pools)
        if free < req.count:
            return Rejection(name, f"{free} free {req.describe()}, {req.count} requested ({req.label})")
    cpus = _split(request.vcpus, request.numa_nodes)
    memory = _split(request.memory_mb, request.numa_nodes)
    combos = list(itertools.combinations(sorted(host.cells), request.numa_nodes))
    # Inside a host, spread puts the guest on the emptiest cells, pack on the fullest that fit.
    combos.sort(key=lambda c: (sum(host.cells[n].free_memory_mb for n in c) * (-1 if spread else 1), c))
    reasons: list[str] = []
    for combo in combos:
        short = next(
            (
                f"NUMA node {n} has {host.cells[n].free_cpus} free vCPUs and {host.cells[n].free_memory_mb} MB, "
                f"{c} vCPUs and {m} MB needed"
                for n, c, m in zip(combo, cpus, memory, strict=True)
                if host.cells[n].free_cpus < c or host.cells[n].free_memory_mb < m
            ),
            None,
        )
        if short is not None:
            reasons.append(short)
            continue
        result = _assign(host, request.devices, eligible, combo, salt)
        if isinstance(result, str):
            reasons.append(result)
            continue
        devices, misses = result
        return Placement(
            host=name,
            nodes=combo,
            cpus_by_node=dict(zip(combo, cpus, strict=True)),
            memory_by_node=dict(zip(combo, memory, strict=True)),
            devices=devices,
            affinity_misses=misses,
        )
    unique = list(dict.fromkeys(reasons))
    more = f" (and {len(unique) - MAX_REASONS} more)" if len(unique) > MAX_REASONS else ""
    return Rejection(name, "; ".join(unique[:MAX_REASONS]) + more)
