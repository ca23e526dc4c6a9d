"""Choose a server's devices on one host and one set of guest NUMA nodes: an exact, bounded
branch-and-bound search that keeps the PF/VF rule and the flavor's ``pci_group`` relations and, among
the valid choices, takes the one that fragments the host least.

A choice costs, per device (lower is better):

- ``AFFINITY`` when the device is known to sit off the guest's nodes (``preferred``/``socket`` allow it);
- ``SPLIT`` for the first VF taken from a PF none of whose VFs was in use: a whole PF that a
  ``direct-physical`` port or a PF alias could have had;
- ``OPEN`` for the first device taken under a PCIe switch with nothing in use: a whole switch that a
  group could have had;
- ``SWITCHED`` for each device under a PCIe switch granted to a request in no ``same_switch`` group:
  devices behind a switch are kept for servers that need them together.

Devices in one pool are interchangeable (same ids, tags, NUMA node, PF, switch), so the search branches
over pools, not devices, and the devices of one request take pools in non-decreasing order: no choice is
visited twice. A PF is a pool of its own (its VFs exclude it). The search stops after ``MAX_STEPS``
branches and keeps the best choice found by then (``Found.exhausted`` says so): the bound that keeps a
host with hundreds of devices from the combinatorial explosion an enumeration of candidates meets."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from epa.domain.address import PciAddress
from epa.domain.device import DevType
from epa.domain.pci_group import Relation
from epa.scheduler.host_state import HostState, Pool, Slot
from epa.scheduler.request import DeviceRequest, GroupRequest

AFFINITY = 1000
SPLIT = 5
OPEN = 1
SWITCHED = 1
RESERVE = 3
MAX_STEPS = 5000


@dataclass(frozen=True, slots=True)
class Costs:
    """The cost weights. ``FIRST_FIT`` counts only remote devices and takes the lowest addresses: the
    baseline the placement benchmark compares with."""

    affinity: int = AFFINITY
    split: int = SPLIT
    open: int = OPEN
    switched: int = SWITCHED
    # Per free whole device (a PF, a device without SR-IOV) on the guest's nodes that the server does
    # not take (charged by scheduler.fit, which chooses the nodes).
    reserve: int = RESERVE


FIRST_FIT = Costs(split=0, open=0, switched=0, reserve=0)

GroupKey = PciAddress | str | int | None


@dataclass(slots=True)
class _Bin:
    """Interchangeable free devices: a pool, or one PF."""

    slots: list[Slot]
    key: tuple[object, ...]

    @property
    def first(self) -> Slot:
        return self.slots[0]

    @property
    def pf(self) -> PciAddress | None:
        """The PF its devices are functions of (a VF's parent, a PF itself; a plain device: none)."""
        s = self.first
        return s.parent_addr if s.dev_type is DevType.VF else (s.address if s.dev_type is DevType.PF else None)


def relation_key(slot: Slot, relation: Relation) -> GroupKey:
    """What a device is compared by under ``relation`` (None: it has none, so no ``same_*`` holds)."""
    if relation is Relation.SAME_SWITCH:
        return slot.switch
    if relation is Relation.SAME_ROOT:
        return slot.root
    if relation is Relation.SAME_NUMA:
        return slot.numa_node
    if slot.dev_type is DevType.VF:
        return slot.parent_addr
    return slot.address if slot.dev_type is DevType.PF else None


@dataclass(slots=True)
class Found:
    """The best choice (devices per request, its cost, devices off the guest's nodes), or None; and
    whether the search ran out of steps before it could prove that choice best (or that there is none)."""

    devices: tuple[tuple[PciAddress, ...], ...] | None = None
    cost: int = 0
    misses: int = 0
    exhausted: bool = False
    steps: int = 0


@dataclass(slots=True)
class _State:
    used: list[int]
    whole: set[PciAddress] = field(default_factory=set)
    split: Counter[PciAddress] = field(default_factory=Counter)
    opened: Counter[PciAddress] = field(default_factory=Counter)


class _Search:
    def __init__(
        self,
        host: HostState,
        requests: Sequence[DeviceRequest],
        allowed: Sequence[list[Pool]],
        groups: Sequence[GroupRequest],
        nodes: set[int],
        max_steps: int,
        costs: Costs,
    ) -> None:
        self.host = host
        self.costs = costs
        self.nodes = nodes
        self.groups = groups
        self.max_steps = max_steps
        # Requests in no same_switch group: their devices behind a switch cost SWITCHED each.
        self.switch_free = [
            not any(g.relation is Relation.SAME_SWITCH and i in g.members for g in groups) for i in range(len(requests))
        ]
        self.bins: list[_Bin] = []
        where: dict[tuple[object, ...], int] = {}
        cands: list[list[int]] = []
        for req, pools in enumerate(allowed):
            mine: list[int] = []
            for pool in pools:
                split = [[s] for s in pool.slots] if pool.key[2] is DevType.PF else [pool.slots]
                for slots in split:
                    key = (pool.key, slots[0].address if len(slots) == 1 else None)
                    if key not in where:
                        where[key] = len(self.bins)
                        self.bins.append(_Bin(slots, key))
                    mine.append(where[key])
            mine.sort(key=lambda b, req=req: self._rank(b, req))  # type: ignore[misc]
            cands.append(mine)
        self.cands = cands
        self.groups_of: list[list[int]] = [
            [g for g, gr in enumerate(groups) if i in gr.members] for i in range(len(requests))
        ]
        # Scarcest request first: failures show early, and group members fix their key soon.
        order = sorted(
            range(len(requests)), key=lambda i: (sum(len(self.bins[b].slots) for b in cands[i]) - requests[i].count, i)
        )
        self.units = [i for i in order for _ in range(requests[i].count)]
        self.state = _State([0] * len(self.bins))
        self.values: list[GroupKey] = [None] * len(groups)
        self.placed: list[int] = [0] * len(groups)
        self.pfs: list[Counter[PciAddress]] = [Counter() for _ in groups]
        self.chosen: list[int] = []
        self.best: list[int] | None = None
        self.best_cost = 0
        self.best_misses = 0
        self.steps = 0

    def _rank(self, b: int, req: int) -> tuple[int, int, PciAddress]:
        """Likely-cheap pools first (so a good bound comes early), then the fullest: best fit."""
        s = self.bins[b].first
        base = self._cost(b, req, _State([0] * len(self.bins)))
        fullest = self.costs.split and s.dev_type is DevType.VF
        return (base, len(self.bins[b].slots) if fullest else 0, s.address)

    def _cost(self, b: int, req: int, st: _State) -> int:
        s = self.bins[b].first
        c = self.costs
        cost = c.affinity if s.numa_node is not None and s.numa_node not in self.nodes else 0
        pf = s.parent_addr
        if s.dev_type is DevType.VF and pf is not None and not self.host.vfs_in_use.get(pf) and not st.split[pf]:
            cost += c.split
        if s.switch is not None and s.switch not in self.host.busy_switches and not st.opened[s.switch]:
            cost += c.open
        if s.switch is not None and self.switch_free[req]:
            cost += c.switched
        return cost

    def _fits(self, b: int, req: int) -> bool:
        bin_, st = self.bins[b], self.state
        if st.used[b] >= len(bin_.slots):
            return False
        s = bin_.first
        if s.dev_type is DevType.PF and (st.split[s.address] or s.address in st.whole):
            return False
        if s.dev_type is DevType.VF and s.parent_addr in st.whole:
            return False
        for g in self.groups_of[req]:
            rel = self.groups[g].relation
            key = relation_key(s, rel)
            if rel is Relation.DISTINCT_PF:
                if key is not None and self.pfs[g][key]:  # type: ignore[index]
                    return False
            elif key is None or (self.placed[g] and self.values[g] != key):
                return False
        return True

    def _take(self, b: int, req: int, sign: int) -> None:
        st, s = self.state, self.bins[b].first
        st.used[b] += sign
        if s.dev_type is DevType.PF:
            (st.whole.add if sign > 0 else st.whole.discard)(s.address)
        if s.dev_type is DevType.VF and s.parent_addr is not None:
            st.split[s.parent_addr] += sign
        if s.switch is not None:
            st.opened[s.switch] += sign
        for g in self.groups_of[req]:
            rel = self.groups[g].relation
            key = relation_key(s, rel)
            if rel is Relation.DISTINCT_PF:
                if key is not None:
                    self.pfs[g][key] += sign  # type: ignore[index]
            else:
                self.values[g] = key
                self.placed[g] += sign

    def run(self, at: int = 0, cost: int = 0, misses: int = 0) -> None:
        if self.best is not None and cost >= self.best_cost:
            return
        if at == len(self.units):
            self.best, self.best_cost, self.best_misses = list(self.chosen), cost, misses
            return
        req = self.units[at]
        cands = self.cands[req]
        # The devices of one request take pools in non-decreasing candidate order.
        start = self.chosen[-1] if at and self.units[at - 1] == req else 0
        for pos in range(start, len(cands)):
            if self.steps >= self.max_steps or (self.best is not None and self.best_cost == 0):
                return
            b = cands[pos]
            if not self._fits(b, req):
                continue
            self.steps += 1
            add = self._cost(b, req, self.state)
            miss = 1 if _off_node(self.bins[b].first, self.nodes) else 0
            self._take(b, req, 1)
            self.chosen.append(pos)
            self.run(at + 1, cost + add, misses + miss)
            self.chosen.pop()
            self._take(b, req, -1)


def _off_node(slot: Slot, nodes: set[int]) -> bool:
    """Whether ``slot`` is known to sit off the guest's ``nodes`` (unknown affinity is not counted)."""
    return slot.numa_node is not None and slot.numa_node not in nodes


def search(
    host: HostState,
    requests: Sequence[DeviceRequest],
    allowed: Sequence[list[Pool]],
    groups: Sequence[GroupRequest],
    nodes: set[int],
    salt: int = 0,
    max_steps: int = MAX_STEPS,
    costs: Costs = Costs(),
) -> Found:
    """The least-cost devices for ``requests`` from their ``allowed`` pools under ``groups``."""
    s = _Search(host, requests, allowed, groups, nodes, max_steps, costs)
    s.run()
    exhausted = s.steps >= max_steps
    if s.best is None:
        return Found(exhausted=exhausted, steps=s.steps)
    out: list[list[PciAddress]] = [[] for _ in requests]
    given: Counter[int] = Counter()
    for req, pos in zip(s.units, s.best, strict=True):
        b = s.cands[req][pos]
        bin_ = s.bins[b]
        out[req].append(bin_.slots[(_offset(host, bin_, salt) + given[b]) % len(bin_.slots)].address)
        given[b] += 1
    return Found(tuple(tuple(d) for d in out), s.best_cost, s.best_misses, exhausted, s.steps)


def _offset(host: HostState, bin_: _Bin, salt: int) -> int:
    """Which of a pool's equivalent devices to take first. Salt 0: the lowest address. Another salt (one
    per API process) spreads processes over the pool, so that two of them scheduling from the same view
    rarely race for the same VF; the same salt always gives the same choice."""
    if not salt or len(bin_.slots) == 1:
        return 0
    return zlib.crc32(f"{salt}/{host.name}/{bin_.key[0]}".encode())
