"""Fit one server request on one host: guest NUMA cells for its CPUs and memory, and devices for its
requests under their NUMA policies and the flavor's ``pci_group`` relations, never granting a PF
together with one of its own VFs.

The search is bounded: cell combinations of the guest's node count (hosts have few cells), and for the
devices ``scheduler.search``'s branch-and-bound, which stops after ``search.MAX_STEPS`` branches."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from epa.domain.address import PciAddress
from epa.domain.alias import NumaPolicy
from epa.domain.device import DevType
from epa.domain.pci_group import Relation
from epa.scheduler.host_state import HostState, Pool
from epa.scheduler.request import DeviceRequest, GroupRequest, ServerRequest
from epa.scheduler.search import MAX_STEPS, Costs, Found, relation_key, search

MAX_REASONS = 3
# Device-search steps one fit may take over all its NUMA node combinations (each search takes at most
# search.MAX_STEPS): a host of many nodes and devices costs a bounded time, not one search per combination.
FIT_STEPS = 4 * MAX_STEPS


@dataclass(slots=True)
class _Spent:
    steps: int = 0


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
    # What the device choice costs the host's free capacity (scheduler.search: remote devices, whole
    # PFs split, whole switches opened).
    cost: int = 0

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


def _assign(
    host: HostState,
    request: ServerRequest,
    eligible: Sequence[list[Pool]],
    nodes: tuple[int, ...],
    salt: int,
    costs: Costs,
    spent: _Spent,
) -> Found | str:
    """Devices for every request on these guest nodes, or the reason there are none."""
    requests = request.devices
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
    found = search(host, requests, allowed, request.groups, node_set, salt, costs=costs)
    spent.steps += found.steps
    if found.devices is not None:
        return found
    return _why_none(host, request, allowed, node_set, found)


def _why_none(
    host: HostState, request: ServerRequest, allowed: Sequence[list[Pool]], nodes: set[int], found: Found
) -> str:
    """Why the search found nothing: the PF/VF rule alone, one ``pci_group`` relation (with the nearest
    match on this host), or the relations together."""
    requests = request.devices
    bounded = f" (the search stopped after {found.steps} steps)" if found.exhausted else ""
    labels = ", ".join(r.label for r in requests)
    alone = search(host, requests, allowed, (), nodes) if request.groups else found
    if alone.devices is None:
        return f"the free devices cannot serve {labels} together (a PF and its own VFs are never both granted){bounded}"
    for group in request.groups:
        if search(host, requests, allowed, (group,), nodes).devices is None:
            return f"pci_group {group.text}: {nearest(group, requests, allowed)}{bounded}"
    texts = "; ".join(g.text for g in request.groups)
    return f"pci_group {texts}: each relation can be met, but not all together{bounded}"


def nearest(group: GroupRequest, requests: Sequence[DeviceRequest], allowed: Sequence[list[Pool]]) -> str:
    """How close this host comes to ``group``: the best-stocked switch (root complex, NUMA node, PF), or
    how many distinct PFs have a free device."""
    need = sum(requests[i].count for i in group.members)
    what = ", ".join(requests[i].label for i in group.members)
    noun = group.relation.noun
    if group.relation is Relation.DISTINCT_PF:
        pfs = {k for i in group.members for p in allowed[i] for s in p.slots if (k := relation_key(s, group.relation))}
        plain = sum(
            1 for i in group.members for p in allowed[i] for s in p.slots if relation_key(s, group.relation) is None
        )
        return f"{need} devices ({what}) on distinct PFs needed; {len(pfs)} PFs have a free one" + (
            f" and {plain} free devices are on no PF" if plain else ""
        )
    have: Counter[str] = Counter()
    for i in group.members:
        per: Counter[str] = Counter()
        for p in allowed[i]:
            for s in p.slots:
                k = relation_key(s, group.relation)
                if k is not None:
                    per[str(k)] += 1
        for k, n in per.items():
            have[k] += min(n, requests[i].count)
    if not have:
        return f"no free device of {what} is under any {noun}"
    key, best = min(have.items(), key=lambda kv: (-kv[1], kv[0]))
    return f"no {noun} holds all {need} devices ({what}); nearest: {noun} {key} holds {best}"


def _unwanted(host: HostState, nodes: tuple[int, ...], taken: tuple[tuple[PciAddress, ...], ...]) -> int:
    """Free whole devices (PFs, devices without SR-IOV) on ``nodes`` that the placement does not take:
    the server's CPUs and memory there are CPUs and memory those devices' future servers cannot have."""
    whole = host.whole_free_by_node()
    mine = sum(
        1 for group in taken for a in group if (s := host.free[a]).dev_type is not DevType.VF and s.numa_node in nodes
    )
    return sum(whole.get(n, 0) for n in nodes) - mine


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
    costs: Costs = Costs(),  # noqa: B008 - frozen, shared safely
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
    best: Placement | None = None
    # The cheapest device choice over the cells that fit (scheduler.search's cost: remote devices, whole
    # PFs and switches broken); among equals, the first in spread/pack order.
    spent = _Spent()
    for tried, combo in enumerate(combos):
        if spent.steps >= FIT_STEPS:
            if best is None:
                reasons.append(
                    f"the device search stopped after {spent.steps} steps, {tried} of {len(combos)} node sets tried"
                )
            break
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
        result = _assign(host, request, eligible, combo, salt, costs, spent)
        if isinstance(result, str):
            reasons.append(result)
            continue
        cost = result.cost + costs.reserve * _unwanted(host, combo, result.devices or ())
        if best is None or cost < best.cost:
            best = Placement(
                host=name,
                nodes=combo,
                cpus_by_node=dict(zip(combo, cpus, strict=True)),
                memory_by_node=dict(zip(combo, memory, strict=True)),
                devices=result.devices or (),
                affinity_misses=result.misses,
                cost=cost,
            )
        if best.cost == 0:
            break
    if best is not None:
        return best
    unique = list(dict.fromkeys(reasons))
    more = f" (and {len(unique) - MAX_REASONS} more)" if len(unique) > MAX_REASONS else ""
    return Rejection(name, "; ".join(unique[:MAX_REASONS]) + more)
