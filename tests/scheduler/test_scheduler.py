"""Ranking hosts: weighers, deterministic ties, the fast path equal to a full evaluation, explain."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epa.domain.address import PciAddress
from epa.domain.alias import NumaPolicy
from epa.domain.device import DevType
from epa.domain.pci_group import Relation
from epa.scheduler.host_state import Cell, HostState, Slot
from epa.scheduler.request import DeviceRequest, GroupRequest, Matcher, ServerRequest
from epa.scheduler.scheduler import Scheduler, SchedulerConfig
from epa.scheduler.search import relation_key
from epa.scheduler.weigh import POLICIES, WeighConfig
from epa.simulate.hosts import gpu_host, nfv_host, no_numa_host
from support.sched import NOW, host_state

QAT = Matcher(vendor_id="8086", product_id="37c9")
SPECS = ['{"vendor_id": "8086", "product_id": "37c9"}', '{"vendor_id": "10de"}']


def req(
    vcpus: int = 2, memory_mb: int = 2048, qat: int = 0, policy: NumaPolicy = NumaPolicy.LEGACY, numa_nodes: int = 1
) -> ServerRequest:
    devices = (DeviceRequest("alias qat", qat, (QAT,), policy),) if qat else ()
    return ServerRequest(vcpus, memory_mb, numa_nodes, devices)


def plain_host(name: str, free_mem: int, cells: int = 2, assignable: int = 0) -> HostState:
    return HostState.build(
        name, True, NOW, [Cell(n, 16, 32768, n, 0, 32768 - free_mem // cells) for n in range(cells)], [], {}, assignable
    )


def test_spread_prefers_free_memory_pack_prefers_full_hosts() -> None:
    hosts = [plain_host("a", 10000), plain_host("b", 60000), plain_host("c", 30000)]
    spread = Scheduler()
    spread.load(hosts)
    assert [r.placement.host for r in spread.select(req(), NOW).ranked] == ["b", "c", "a"]
    pack = Scheduler(SchedulerConfig(weigh=WeighConfig(spread=False)))
    pack.load([plain_host("a", 10000), plain_host("b", 60000), plain_host("c", 30000)])
    assert [r.placement.host for r in pack.select(req(), NOW).ranked] == ["a", "c", "b"]


def test_ties_break_by_host_name() -> None:
    s = Scheduler()
    s.load([plain_host(n, 20000) for n in ("h3", "h1", "h2")])
    assert [r.placement.host for r in s.select(req(), NOW).ranked] == ["h1", "h2", "h3"]


def test_hosts_holding_the_image_win_a_tie_but_not_a_real_difference() -> None:
    image = frozenset({"a" * 64, "b" * 64})
    holder = HostState.build("h2", True, NOW, [Cell(0, 16, 32768, 0, 0, 12000)], [], {}, 0, image)
    partial = HostState.build("h0", True, NOW, [Cell(0, 16, 32768, 0, 0, 12000)], [], {}, 0, {"a" * 64})
    s = Scheduler()
    s.load([holder, partial, plain_host("h1", 20768, cells=1)])
    wanted = dataclasses.replace(req(), image_parts=image)
    assert [(r.placement.host, r.holds_image) for r in s.select(wanted, NOW).ranked] == [
        ("h2", True),
        ("h0", False),  # half the parts is not the image: no bonus
        ("h1", False),
    ]
    assert [r.placement.host for r in s.select(req(), NOW).ranked] == ["h0", "h1", "h2"]
    # A host with much more free memory still wins over a holder: the term settles near-ties only.
    s.load([holder, plain_host("roomy", 32768 * 2, cells=2)])
    assert s.select(wanted, NOW).ranked[0].placement.host == "roomy"


def test_servers_without_devices_keep_off_device_hosts(tmp_path: Path) -> None:
    s = Scheduler()
    nfv = host_state(nfv_host(), tmp_path, SPECS, cells={0: (16, 32768, 0), 1: (16, 32768, 1)})
    s.load([nfv, plain_host("plain", 65536)])
    assert s.select(req(), NOW).ranked[0].placement.host == "plain"
    assert s.select(req(qat=1), NOW).ranked[0].placement.host == "nfv-1"


def test_no_valid_host_is_explained_per_host(tmp_path: Path) -> None:
    s = Scheduler()
    s.load(
        [
            host_state(nfv_host(), tmp_path, SPECS),
            host_state(no_numa_host(), tmp_path, SPECS),
            host_state(gpu_host(), tmp_path, SPECS),
        ]
    )
    r = req(qat=40, policy=NumaPolicy.REQUIRED)
    assert s.select(r, NOW).ranked == ()
    why = s.explain(r, NOW)
    assert why.ranked == ()
    reasons = {x.host: x.reason for x in why.rejections}
    assert reasons["edge-1"] == "0 free 8086:37c9 device, 40 requested (alias qat)"
    assert reasons["gpu-1"] == "0 free 8086:37c9 device, 40 requested (alias qat)"
    assert reasons["nfv-1"] == (
        "NUMA node 0 has 32 free 8086:37c9 device, 40 requested (policy required); "
        "NUMA node 1 has 16 free 8086:37c9 device, 40 requested (policy required)"
    )
    assert why.summary().startswith("2 hosts: 0 free 8086:37c9 device, 40 requested (alias qat); 1 host: ")


def test_account_takes_the_devices_out_of_the_view(tmp_path: Path) -> None:
    s = Scheduler()
    s.load([host_state(nfv_host(), tmp_path, SPECS)])
    first = s.select(req(qat=16, policy=NumaPolicy.REQUIRED), NOW).ranked[0].placement
    s.account(first)
    second = s.select(req(qat=16, policy=NumaPolicy.REQUIRED), NOW).ranked[0].placement
    assert not set(first.all_devices) & set(second.all_devices)
    s.account(second)
    third = s.select(req(qat=16, policy=NumaPolicy.REQUIRED), NOW).ranked[0].placement
    s.account(third)
    assert s.select(req(qat=1, policy=NumaPolicy.REQUIRED), NOW).ranked == ()
    assert s.hosts["nfv-1"].free_cpus == 80 - 6


def random_host(rnd: random.Random, i: int) -> HostState:
    cells = [
        Cell(n, 16, 16384, n // 2, rnd.randint(0, 16), rnd.randint(0, 16384)) for n in range(rnd.choice([1, 2, 4]))
    ]
    slots = []
    for p in range(rnd.randint(0, 3)):
        numa = rnd.choice([None, *range(len(cells))])
        pf = PciAddress(0, 0x10 + p, 0, 0)
        if rnd.random() < 0.3:
            slots.append(Slot(pf, "8086", "37c8", DevType.PF, numa, None))
        for v in range(rnd.randint(0, 6)):
            slots.append(Slot(PciAddress(0, 0x10 + p, 1, v), "8086", "37c9", DevType.VF, numa, pf))
    return HostState.build(
        f"h{i:03d}",
        rnd.random() > 0.1,
        NOW - rnd.choice([0, 0, 0, 1000]),
        cells,
        slots,
        {},
        len(slots) + rnd.randint(0, 3),
        rnd.sample(PARTS, rnd.randint(0, len(PARTS))),
    )


PARTS = ["a" * 64, "b" * 64, "c" * 64]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 10**6),
    st.integers(0, 6),
    st.sampled_from(list(NumaPolicy)),
    st.integers(1, 2),
    st.sampled_from(POLICIES),
    st.sampled_from([None, *Relation]),
)
def test_fast_selection_equals_full_evaluation(
    seed: int, qat: int, policy: NumaPolicy, nodes: int, weigher: str, relation: Relation | None
) -> None:
    rnd = random.Random(seed)
    s = Scheduler(SchedulerConfig(weigh=WeighConfig.policy(weigher), alternates=3))
    s.load([random_host(rnd, i) for i in range(40)])
    r = req(vcpus=rnd.randint(1, 12), memory_mb=rnd.randint(1, 9000), qat=qat, policy=policy, numa_nodes=nodes)
    # The image term too: the index's vectorised bonus must rank as the host-by-host weigher does.
    r = dataclasses.replace(r, image_parts=frozenset(rnd.sample(PARTS, rnd.randint(0, 2))))
    if relation is not None and qat:  # a pci_group over the QAT request: the index must stay a necessary test
        r = dataclasses.replace(r, groups=(GroupRequest(relation, (0,), relation.value + "(qat)"),))
    fast = s.select(r, NOW)
    full = s.explain(r, NOW)
    assert [x.placement.host for x in fast.ranked] == [x.placement.host for x in full.ranked[:3]]
    for a, b in zip(fast.ranked, full.ranked, strict=False):
        assert a.placement == b.placement
        assert a.score == pytest.approx(b.score)
    assert len(full.ranked) + len(full.rejections) == 40
    for a in fast.ranked:
        assert a.holds_image == (bool(r.image_parts) and r.image_parts <= s.hosts[a.placement.host].images)
    for ranked in full.ranked:  # every placement honours the PF/VF rule and the counts
        host = s.hosts[ranked.placement.host]
        granted = ranked.placement.all_devices
        assert len(granted) == len(set(granted)) == qat
        parents = {host.free[a].parent_addr for a in granted}
        assert not any(a in parents for a in granted)
        if r.groups and relation in (Relation.SAME_PF, Relation.SAME_NUMA):
            assert len({relation_key(host.free[a], relation) for a in granted}) <= 1


def test_index_turns_away_hosts_without_enough_devices_on_one_node(tmp_path: Path) -> None:
    s = Scheduler()
    s.load([host_state(nfv_host(), tmp_path, SPECS), host_state(gpu_host(), tmp_path, SPECS)])
    # 48 QAT VFs on nfv-1, but at most 32 on one NUMA node: "required" cannot get 40 there.
    found = s.index.prefilter(req(qat=40, policy=NumaPolicy.REQUIRED), NOW, 300, WeighConfig())
    assert found.rows.size == 0
    assert found.failed == {"fewer than 40 free 8086:37c9 device (alias qat, policy required)": 2}
    assert s.index.prefilter(req(qat=40, policy=NumaPolicy.PREFERRED), NOW, 300, WeighConfig()).rows.size == 1
    assert s.why_not(req(qat=40, policy=NumaPolicy.REQUIRED), NOW) == (
        "2 hosts: fewer than 40 free 8086:37c9 device (alias qat, policy required)"
    )
    assert s.why_not(req(vcpus=1000), NOW) == "2 hosts: fewer than 1000 free vCPUs"


def test_ranking_is_lazy_but_complete() -> None:
    s = Scheduler()
    s.load([plain_host(f"h{i:03d}", 1000 + 37 * (i % 50)) for i in range(300)])
    ranked = list(s.index.ranked(req(memory_mb=100), NOW, 300, WeighConfig()))
    assert len(ranked) == 300
    keys = [(-score, name) for name, score in ranked]
    assert keys == sorted(keys)  # best score first, ties by name, across every chunk


def test_ranking_with_thousands_of_identical_hosts_keeps_name_order() -> None:
    # A fleet of one model: most hosts tie for the best score (the cut of every chunk falls inside the tie),
    # others tie in groups larger than a chunk; loaded in random order so that rows are not in name order.
    memory = [20000] * 700 + [12000] * 200 + [9000 + i for i in range(100)]
    names = [f"h{i:04d}" for i in range(len(memory))]
    order = list(range(len(memory)))
    random.Random(7).shuffle(order)
    s = Scheduler()
    s.load([plain_host(names[i], memory[i]) for i in order])
    ranked = list(s.index.ranked(req(memory_mb=100), NOW, 300, WeighConfig()))
    assert len(ranked) == len(memory)
    keys = [(-score, name) for name, score in ranked]
    assert keys == sorted(keys)
    assert [name for name, _ in ranked[:3]] == ["h0000", "h0001", "h0002"]


def test_ties_stop_the_scan_once_the_alternates_are_found() -> None:
    s = Scheduler(SchedulerConfig(alternates=3))
    s.load([plain_host(f"h{i:03d}", 20000) for i in range(50)])
    selection = s.select(req(), NOW)
    assert [r.placement.host for r in selection.ranked] == ["h000", "h001", "h002"]
    assert selection.evaluated == 3


def test_a_salt_spreads_picks_over_equivalent_devices(tmp_path: Path) -> None:
    host = host_state(nfv_host(), tmp_path, SPECS)
    picks = set()
    for salt in range(1, 30):
        s = Scheduler(SchedulerConfig(salt=salt))
        s.load([host])
        first = s.select(req(qat=1, policy=NumaPolicy.REQUIRED), NOW).ranked[0].placement
        again = s.select(req(qat=1, policy=NumaPolicy.REQUIRED), NOW).ranked[0].placement
        assert first == again  # one salt, one choice
        picks.add(first.all_devices)
    assert len(picks) > 5
    unsalted = Scheduler()
    unsalted.load([host])
    (vf,) = unsalted.select(req(qat=1, policy=NumaPolicy.REQUIRED), NOW).ranked[0].placement.all_devices
    # Unsalted: the lowest address of the pool the search chose (the PF on node 1, which breaks no switch).
    assert vf == min(a for a, slot in host.free.items() if slot.parent_addr == host.free[vf].parent_addr)
