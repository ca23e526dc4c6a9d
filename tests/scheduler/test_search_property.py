"""The device search against a brute-force enumeration on small random hosts: the same verdict (a choice
exists or not) and the same best cost, with every group relation and the PF/VF rule kept."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epa.domain.address import PciAddress
from epa.domain.alias import NumaPolicy
from epa.domain.device import DevType
from epa.domain.pci_group import Relation
from epa.scheduler.fit import FIT_STEPS, Placement
from epa.scheduler.host_state import Cell, HostState, Slot
from epa.scheduler.request import DeviceRequest, GroupRequest, Matcher, ServerRequest
from epa.scheduler.search import AFFINITY, MAX_STEPS, OPEN, SPLIT, SWITCHED, relation_key, search

ROOTS = ("pci0000:00", "pci0000:80")
SWITCHES = (None, PciAddress(0, 0x3B, 0, 0), PciAddress(0, 0x5B, 0, 0))


@st.composite
def hosts(draw: st.DrawFn) -> HostState:
    """Up to 3 PFs with up to 3 VFs each (some VFs in use), up to 3 plain devices, on 2 NUMA nodes,
    2 root complexes and 2 switches (or none)."""
    slots: list[Slot] = []
    vfs_in_use: dict[PciAddress, int] = {}
    busy: set[PciAddress] = set()
    for pf_no in range(draw(st.integers(0, 3))):
        pf = PciAddress(0, 0x10 + pf_no, 0, 0)
        numa, root, switch = (
            draw(st.sampled_from((0, 1))),
            draw(st.sampled_from(ROOTS)),
            draw(st.sampled_from(SWITCHES)),
        )
        used = draw(st.integers(0, 2))
        if used:
            vfs_in_use[pf] = used
        if switch is not None and (used or draw(st.booleans())):
            busy.add(switch)
        vendor = draw(st.sampled_from(("8086", "15b3")))
        if not used and draw(st.booleans()):
            slots.append(Slot(pf, vendor, "pf", DevType.PF, numa, None, (), True, root, switch))
        for vf_no in range(draw(st.integers(0, 3))):
            addr = PciAddress(0, 0x10 + pf_no, 1, vf_no)
            slots.append(Slot(addr, vendor, "vf", DevType.VF, numa, pf, (), True, root, switch))
    for dev_no in range(draw(st.integers(0, 3))):
        addr = PciAddress(0, 0x40 + dev_no, 0, 0)
        numa = draw(st.sampled_from((0, 1, None)))
        slots.append(
            Slot(
                addr,
                "10de",
                "gpu",
                DevType.PCI,
                numa,
                None,
                (),
                False,
                draw(st.sampled_from(ROOTS)),
                draw(st.sampled_from(SWITCHES)),
            )
        )
    cells = [Cell(0, 8, 8192, 0), Cell(1, 8, 8192, 1)]
    return HostState.build("h", True, 0.0, cells, slots, vfs_in_use, len(slots), busy_switches=busy)


MATCHERS = (
    Matcher(dev_type=DevType.VF),
    Matcher(dev_type=DevType.PF),
    Matcher(dev_type=DevType.PCI),
    Matcher(vendor_id="8086"),
    Matcher(),
)


@st.composite
def problems(draw: st.DrawFn) -> tuple[tuple[DeviceRequest, ...], tuple[GroupRequest, ...]]:
    n = draw(st.integers(1, 3))
    requests = tuple(
        DeviceRequest(f"r{i}", draw(st.integers(1, 2)), (draw(st.sampled_from(MATCHERS)),), NumaPolicy.PREFERRED)
        for i in range(n)
    )
    groups = []
    for _ in range(draw(st.integers(0, 2))):
        relation = draw(st.sampled_from(list(Relation)))
        members = tuple(sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n))))
        groups.append(GroupRequest(relation, members, f"{relation.value}{members}"))
    return requests, tuple(groups)


def brute_force(
    host: HostState, requests: Sequence[DeviceRequest], groups: Sequence[GroupRequest], nodes: set[int]
) -> int | None:
    """The least cost over every assignment of distinct free devices, or None when none is valid."""
    candidates = [
        [
            s
            for s in host.free.values()
            if any(m.matches(s.vendor_id, s.product_id, s.dev_type, dict(s.tags), s.has_netdev) for m in r.alternatives)
        ]
        for r in requests
    ]
    per_request = [list(itertools.combinations(c, r.count)) for c, r in zip(candidates, requests, strict=True)]
    best: int | None = None
    for choice in itertools.product(*per_request):
        chosen = [s for group in choice for s in group]
        if len({s.address for s in chosen}) != len(chosen):
            continue
        pfs = {s.address for s in chosen if s.dev_type is DevType.PF}
        if any(s.parent_addr in pfs for s in chosen):
            continue
        if not all(_holds(g, [s for i in g.members for s in choice[i]]) for g in groups):
            continue
        cost = AFFINITY * sum(1 for s in chosen if s.numa_node is not None and s.numa_node not in nodes)
        split = {s.parent_addr for s in chosen if s.dev_type is DevType.VF and not host.vfs_in_use.get(s.parent_addr)}  # type: ignore[arg-type]
        opened = {s.switch for s in chosen if s.switch is not None and s.switch not in host.busy_switches}
        cost += SPLIT * len(split) + OPEN * len(opened)
        grouped = {i for g in groups if g.relation is Relation.SAME_SWITCH for i in g.members}
        cost += SWITCHED * sum(
            1 for i, devs in enumerate(choice) if i not in grouped for s in devs if s.switch is not None
        )
        best = cost if best is None else min(best, cost)
    return best


def _holds(group: GroupRequest, devices: list[Slot]) -> bool:
    keys = [relation_key(s, group.relation) for s in devices]
    if group.relation is Relation.DISTINCT_PF:
        known = [k for k in keys if k is not None]
        return len(set(known)) == len(known)
    return None not in keys and len(set(keys)) <= 1


@settings(max_examples=400, deadline=None)
@given(host=hosts(), problem=problems(), node=st.sampled_from((0, 1)))
def test_search_matches_brute_force(
    host: HostState, problem: tuple[tuple[DeviceRequest, ...], tuple[GroupRequest, ...]], node: int
) -> None:
    requests, groups = problem
    pools = host.pools()
    allowed = [
        [
            p
            for p in pools
            if any(m.matches(p.key[0], p.key[1], p.key[2], dict(p.key[5]), p.key[6]) for m in r.alternatives)
        ]
        for r in requests
    ]
    found = search(host, requests, allowed, groups, {node})
    assert not found.exhausted
    expected = brute_force(host, requests, groups, {node})
    if expected is None:
        assert found.devices is None
        return
    assert found.devices is not None
    assert found.cost == expected
    # The choice it returns is itself valid and costs what it says.
    by_addr = host.free
    chosen = [[by_addr[a] for a in devs] for devs in found.devices]
    assert [len(c) for c in chosen] == [r.count for r in requests]
    flat = [s for c in chosen for s in c]
    assert len({s.address for s in flat}) == len(flat)
    for g in groups:
        assert _holds(g, [s for i in g.members for s in chosen[i]]), g


def test_the_search_is_bounded_on_a_host_with_hundreds_of_devices() -> None:
    """64 plain devices, each behind its own idle switch, and 8 one-device requests: every choice opens 8
    switches and takes 8 devices behind one, so no choice can be proved best before about 64^8 / 8!
    branches. The search stops at its budget and keeps the first choice it found, which is valid."""
    slots = [
        Slot(
            PciAddress(0, 0x10 + i, 0, 0),
            "10de",
            "gpu",
            DevType.PCI,
            0,
            None,
            (),
            False,
            "pci0000:00",
            PciAddress(0, 0x90 + i, 0, 0),
        )
        for i in range(64)
    ]
    host = HostState.build("big", True, 0.0, [Cell(0, 8, 8192, 0)], slots, {}, 64)
    requests = tuple(DeviceRequest(f"r{i}", 1, (Matcher(dev_type=DevType.PCI),), NumaPolicy.LEGACY) for i in range(8))
    found = search(host, requests, [host.pools()] * 8, (), {0}, max_steps=2000)
    assert found.exhausted
    assert found.steps == 2000
    assert found.devices is not None
    assert len({a for d in found.devices for a in d}) == 8
    assert found.cost == 8 * (OPEN + SWITCHED)


def test_one_fit_bounds_its_search_over_all_node_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 NUMA nodes, each with 8 plain devices behind their own idle switches, and 8 one-device requests:
    every node's search runs out of steps, so the fit stops after FIT_STEPS, not after 8 searches, and
    keeps the placement it found."""
    from epa.scheduler import fit as fit_module

    slots = [
        Slot(
            PciAddress(0, 0x10 * n + i, 0, 0),
            "10de",
            "gpu",
            DevType.PCI,
            n,
            None,
            (),
            False,
            f"pci0000:{n:02x}",
            PciAddress(0, 0x10 * n + i, 1, 0),
        )
        for n in range(8)
        for i in range(8)
    ]
    host = HostState.build("wide", True, 0.0, [Cell(n, 8, 8192, n) for n in range(8)], slots, {}, 64)
    request = ServerRequest(
        1,
        1024,
        1,
        tuple(DeviceRequest(f"r{i}", 1, (Matcher(dev_type=DevType.PCI),), NumaPolicy.REQUIRED) for i in range(8)),
    )
    steps: list[int] = []
    real = fit_module.search

    def counted(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        steps.append(found.steps)
        return found

    monkeypatch.setattr(fit_module, "search", counted)
    placed = fit_module.fit(host, request, now=0.0, alive_seconds=300)
    assert isinstance(placed, Placement)
    assert steps == [MAX_STEPS] * (FIT_STEPS // MAX_STEPS)
