"""Scheduling decision latency at 1,000, 10,000 and 100,000 hosts with NFV inventories (~60 assignable
devices in ~7 pools per host): ``Scheduler.select`` per request kind, the no-valid-host path (select, and
the explain the service runs after it), ``account`` after a decision, and the time to load the hosts.

Host states are built directly (as the service builds them from the database), not through sysfs.
Loading 100,000 hosts through ``Scheduler.load`` takes far too long today (each new host re-sorts all host
names), so at that scale the hosts are bulk-loaded and the real load time is extrapolated from real inserts
into the full index; once a real load fits the budget, the real load is used and timed.
``EPA_BENCH_SCALE=0.1`` runs a smoke version (fewer hosts and decisions)."""

from __future__ import annotations

import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from bench.report import emit, scale
from epa.domain.address import PciAddress
from epa.domain.alias import parse_aliases
from epa.domain.device import DevType
from epa.domain.flavor import Flavor
from epa.domain.port import Port, VnicType
from epa.scheduler.host_state import Cell, HostState, Slot
from epa.scheduler.request import ServerRequest, build_request
from epa.scheduler.scheduler import Scheduler

SEED = 20_240_611
NOW = 1_000_000.0
# (hosts, timed decisions per request kind). p99 of 2,000 samples is the 20th-slowest; of 300, the 3rd.
SCALES = ((1_000, 2_000), (10_000, 2_000), (100_000, 300))
ACCOUNTED = 200  # placements per kind taken out of the view by a timed account()
ACCOUNT_BATCH = 20
TARGET_HOSTS = 10_000
TARGET_P99_MS = 2.0

CELL_CPUS = 40
CELL_MEMORY_MB = 192 * 1024
X710_PF, X710_VF = "1572", "154c"
QAT_PF, QAT_VF = "37c8", "37c9"
GPU_VENDOR, GPU_PRODUCT = "10de", "1eb8"

ALIASES = parse_aliases(
    [
        {"name": "qat", "vendor_id": "8086", "product_id": QAT_VF, "device_type": "type-VF", "numa_policy": "required"},
        {"name": "gpu", "vendor_id": GPU_VENDOR, "product_id": GPU_PRODUCT, "numa_policy": "preferred"},
    ]
)


# -- the inventory -------------------------------------------------------------------------------------


class _Slots:
    """Slots are immutable values and most hosts have the same devices at the same addresses, so hosts
    share them: 100,000 hosts x 60 devices would otherwise be 6 million objects to build and hold."""

    def __init__(self) -> None:
        self._cache: dict[tuple[object, ...], Slot] = {}

    def get(
        self,
        address: PciAddress,
        product_id: str,
        dev_type: DevType,
        numa: int,
        parent: PciAddress | None,
        tags: tuple[tuple[str, str], ...] = (),
        netdev: bool = False,
        vendor_id: str = "8086",
    ) -> Slot:
        key = (address, vendor_id, product_id, dev_type, numa, parent, tags, netdev)
        slot = self._cache.get(key)
        if slot is None:
            slot = self._cache[key] = Slot(address, vendor_id, product_id, dev_type, numa, parent, tags, netdev)
        return slot


_ADDR: dict[tuple[int, int, int], PciAddress] = {}


def _addr(bus: int, slot: int, function: int) -> PciAddress:
    key = (bus, slot, function)
    found = _ADDR.get(key)
    if found is None:
        found = _ADDR[key] = PciAddress(0, bus, slot, function)
    return found


def nfv_host(i: int, slots: _Slots, seed: int = SEED) -> HostState:
    """Host ``i`` of the cluster (the same host at every scale): 2 NUMA cells of 40 CPUs / 192 GB; two
    X710 PFs (physnet1, physnet2) with 8-16 VFs each; 2-3 QAT endpoints with 16 VFs each; a GPU on a
    third of the hosts; devices spread over both cells. A seeded RNG varies the mix and the usage."""
    rnd = random.Random(seed * 1_000_003 + i)
    enabled = rnd.random() >= 0.03
    last_report = NOW - (3_600.0 if rnd.random() < 0.01 else rnd.uniform(0, 60))
    load = rnd.random()
    cells = []
    for node in (0, 1):
        if load < 0.25:  # half full
            cpus, mem = rnd.randint(16, 24), rnd.randint(80, 110) * 1024
        elif load < 0.35:  # nearly full
            cpus, mem = rnd.randint(34, 40), rnd.randint(160, 190) * 1024
        else:
            cpus, mem = rnd.randint(0, 12), rnd.randint(0, 64) * 1024
        cells.append(Cell(node, CELL_CPUS, CELL_MEMORY_MB, node, cpus, mem))

    free: list[Slot] = []
    vfs_in_use: dict[PciAddress, int] = {}
    assignable = 0
    nic_numa = (0, 0) if rnd.random() < 0.2 else (0, 1)
    for p, physnet in enumerate(("physnet1", "physnet2")):
        pf = _addr(0x18, 0, p)
        numa = nic_numa[p]
        tags = (("physical_network", physnet),)
        vfs = [
            slots.get(_addr(0x18, 2 + 8 * p + v // 8, v % 8), X710_VF, DevType.VF, numa, pf, tags, True)
            for v in range(rnd.choice((8, 12, 16)))
        ]
        assignable += 1 + len(vfs)
        usage = rnd.random()
        if usage < 0.05:  # the whole PF is given to a server (direct-physical): its VFs are unavailable
            continue
        used = rnd.randint(1, len(vfs) // 2) if usage < 0.45 else 0
        if used:
            vfs_in_use[pf] = used
            free.extend(rnd.sample(vfs, len(vfs) - used))
        else:
            free.append(slots.get(pf, X710_PF, DevType.PF, numa, None, tags, True))
            free.extend(vfs)
    for e in range(rnd.choice((2, 3))):
        bus = (0x3D, 0x3F, 0xDA)[e]
        pf = _addr(bus, 0, 0)
        numa = e % 2
        vfs = [slots.get(_addr(bus, 1 + v // 8, v % 8), QAT_VF, DevType.VF, numa, pf) for v in range(16)]
        assignable += len(vfs)  # the device_spec names the QAT VFs only
        used = rnd.randint(1, 16) if rnd.random() < 0.3 else 0
        if used:
            vfs_in_use[pf] = used
        free.extend(rnd.sample(vfs, 16 - used) if used else vfs)
    if rnd.random() < 0.3:
        assignable += 1
        if rnd.random() < 0.5:
            gpu = slots.get(_addr(0x86, 0, 0), GPU_PRODUCT, DevType.PCI, rnd.choice((0, 1)), None, vendor_id=GPU_VENDOR)
            free.append(gpu)
    return HostState.build(f"cmp{i:06d}", enabled, last_report, cells, free, vfs_in_use, assignable)


def nfv_hosts(count: int, seed: int = SEED) -> list[HostState]:
    slots = _Slots()
    return [nfv_host(i, slots, seed) for i in range(count)]


# -- the requests -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of request: the flavor and ports a user gives, and the scheduler's request built from them."""

    label: str
    flavor: Flavor
    ports: tuple[Port, ...]
    request: ServerRequest
    fits: bool  # False: fits on no host (the no-valid-host path)


def _kind(label: str, body: dict[str, object], ports: Sequence[Port] = (), fits: bool = True) -> Kind:
    flavor = Flavor.parse(body, ALIASES)
    return Kind(label, flavor, tuple(ports), build_request(flavor, ALIASES, ports), fits)


def request_kinds() -> list[Kind]:
    qat = {"vcpus": 8, "memory_mb": 16_384, "pci_passthrough:alias": "qat:2"}
    small = {"vcpus": 4, "memory_mb": 8_192}
    return [
        _kind("plain 4 vCPU / 8 GB", {"name": "m1.large", **small}),
        _kind("qat:2 required", {"name": "nfv.qat", **qat}),
        _kind(
            "qat:2 + VF port physnet1, legacy",
            {"name": "nfv.qat.port", "numa_policy": "legacy", **qat},
            [Port("physnet1")],
        ),
        _kind(
            "direct-physical port physnet2",
            {"name": "nfv.pf", "vcpus": 8, "memory_mb": 16_384},
            [Port("physnet2", VnicType.DIRECT_PHYSICAL)],
        ),
        _kind("2 NUMA nodes, 32 vCPU / 128 GB", {"name": "numa2", "vcpus": 32, "memory_mb": 131_072, "numa_nodes": 2}),
        # Passes the index on hosts with 3 QAT endpoints (it counts free VFs per host, not per NUMA node), but
        # no NUMA node has more than 32: every such host is fitted and rejected.
        _kind(
            "nowhere: qat:40 required (fit rejects)",
            {"name": "nfv.qat40", **small, "pci_passthrough:alias": "qat:40"},
            fits=False,
        ),
        # No host has two GPUs: the index rules out every host.
        _kind(
            "nowhere: gpu:2 (index rejects)", {"name": "gpu2", **small, "pci_passthrough:alias": "gpu:2"}, fits=False
        ),
    ]


# -- measuring ---------------------------------------------------------------------------------------------


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds (nearest rank below, as report.summary does for p90)."""
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "p50_ms": statistics.median(ordered) * 1e3,
        "p90_ms": ordered[int(0.9 * (n - 1))] * 1e3,
        "p99_ms": ordered[int(0.99 * (n - 1))] * 1e3,
        "max_ms": ordered[-1] * 1e3,
    }


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


@dataclass(slots=True)
class Samples:
    wall: list[float]
    cpu: list[float]
    evaluated: list[int]
    found: int = 0

    @classmethod
    def empty(cls) -> Samples:
        return cls([], [], [])

    def add(self, wall: float, cpu: float, evaluated: int | None = None, found: bool = False) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        if evaluated is not None:
            self.evaluated.append(evaluated)
        self.found += found

    def row(self, hosts: int, op: str, kind: str) -> dict[str, object]:
        return {
            "hosts": hosts,
            "op": op,
            "request": kind,
            "runs": len(self.wall),
            **percentiles(self.wall),
            # CPU time of this process: what the decision costs without the other processes of a shared machine.
            "cpu_p50_ms": statistics.median(self.cpu) * 1e3,
            "cpu_p99_ms": sorted(self.cpu)[int(0.99 * (len(self.cpu) - 1))] * 1e3,
            # Hosts fitted per decision (select), or every host (explain); none for account.
            "evaluated": f"{statistics.mean(self.evaluated):.1f}" if self.evaluated else "-",
            "placed": f"{self.found}/{len(self.wall)}" if self.evaluated else "-",
        }


def measure(samples: Samples, fn: Callable[[], T]) -> T:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    t1, c1 = time.perf_counter(), time.process_time()
    samples.add(t1 - t0, c1 - c0)
    return out


def bulk_load(scheduler: Scheduler, hosts: Sequence[HostState]) -> None:
    """Load ``hosts`` into an empty scheduler through ``HostIndex.upsert``, but with every row allocated
    (and the name ranks computed) once up front: ``upsert`` of a new host re-sorts all names, which makes
    ``Scheduler.load`` quadratic and unusable at 100,000 hosts. Filling known rows is the same code path
    the service takes for a host it already has; ``check_bulk_load`` shows the result is identical."""
    index = scheduler.index
    assert not index.names, "bulk_load needs an empty scheduler"
    index.names.extend(h.name for h in hosts)
    index.position.update((h.name, row) for row, h in enumerate(hosts))
    index.row_images.extend(frozenset() for _ in hosts)
    index._grow(len(hosts), len(index.signatures))
    order = sorted(range(len(index.names)), key=index.names.__getitem__)
    index.name_rank[order] = range(len(order))
    for h in hosts:
        scheduler.hosts[h.name] = h
        index.upsert(h)


def check_bulk_load(hosts: Sequence[HostState]) -> None:
    real, bulk = Scheduler(), Scheduler()
    real.load(hosts)
    bulk_load(bulk, hosts)
    real.select(request_kinds()[0].request, NOW)  # name ranks are re-sorted lazily, at the first ranking
    n = len(hosts)
    assert real.index.signatures == bulk.index.signatures
    for attr in ("enabled", "present", "free_cpus", "total_cpus", "free_mem", "total_mem", "cells", "assignable"):
        assert (getattr(real.index, attr)[:n] == getattr(bulk.index, attr)[:n]).all(), attr
    assert (real.index.name_rank[:n] == bulk.index.name_rank[:n]).all()
    cols = len(real.index.signatures)
    assert (real.index.sig_free[:n, :cols] == bulk.index.sig_free[:n, :cols]).all()
    for kind in request_kinds():
        assert real.select(kind.request, NOW) == bulk.select(kind.request, NOW), kind.label


# Hosts above which the real Scheduler.load (it was quadratic) is replaced by bulk_load plus a measured
# sample of real inserts; and the time budgets (seconds) that keep one scale within about two minutes.
REAL_LOAD_MAX = 200_000
REAL_LOAD_BUDGET = 60.0
MARGINAL_INSERTS = 500
DECISIONS_BUDGET = 90.0
NOWHERE_RUNS = 50
NOWHERE_BUDGET = 12.0
EXPLAIN_RUNS = 5
EXPLAIN_BUDGET = 15.0


def _load(hosts: list[HostState]) -> tuple[Scheduler, dict[str, object]]:
    n = len(hosts)
    sched = Scheduler()
    if n <= REAL_LOAD_MAX:
        seconds, _ = timed(lambda: sched.load(hosts))
        return sched, {"load_s": seconds, "load_method": "Scheduler.load", "insert_ms_at_end": None}
    head, tail = hosts[:-MARGINAL_INSERTS], hosts[-MARGINAL_INSERTS:]
    bulk_s, _ = timed(lambda: bulk_load(sched, head))
    inserts_s, _ = timed(lambda: sched.load(tail))
    per_insert = inserts_s / len(tail)
    if per_insert * n / 2 <= REAL_LOAD_BUDGET:  # no longer quadratic (or small enough): time the real thing
        real = Scheduler()
        seconds, _ = timed(lambda: real.load(hosts))
        return real, {"load_s": seconds, "load_method": "Scheduler.load", "insert_ms_at_end": per_insert * 1e3}
    return sched, {
        # The per-insert cost grows linearly with the hosts already loaded (it re-sorts every name), so a
        # real load of n hosts costs about n/2 inserts at the n-th host's price.
        "load_s": per_insert * n / 2,
        "load_method": f"extrapolated from {len(tail)} real inserts at {len(head)} hosts (bulk load {bulk_s:.1f} s)",
        "insert_ms_at_end": per_insert * 1e3,
    }


def _decisions(sched: Scheduler, kinds: list[Kind], runs: int, rnd: random.Random) -> dict[str, Samples]:
    for kind in kinds:  # warm the host pool caches and numpy's code paths
        for _ in range(10):
            sched.select(kind.request, NOW)
    samples = {k.label: Samples.empty() for k in kinds}
    schedule = [k for k in kinds for _ in range(runs)]
    rnd.shuffle(schedule)
    gc.collect()
    deadline = time.perf_counter() + DECISIONS_BUDGET * scale()
    for kind in schedule:
        c0, t0 = time.process_time(), time.perf_counter()
        sel = sched.select(kind.request, NOW)
        t1, c1 = time.perf_counter(), time.process_time()
        samples[kind.label].add(t1 - t0, c1 - c0, sel.evaluated, bool(sel.ranked))
        if t1 > deadline:
            break
    return samples


def _bounded(fn: Callable[[], T], runs: int, budget: float, minimum: int = 2) -> tuple[Samples, list[T]]:
    samples, outs = Samples.empty(), []
    deadline = time.perf_counter() + budget * scale()
    for i in range(runs):
        outs.append(measure(samples, fn))
        if i + 1 >= minimum and time.perf_counter() > deadline:
            break
    return samples, outs


def _accounts(sched: Scheduler, kinds: list[Kind], runs: int) -> dict[str, Samples]:
    """``account`` of ``runs`` placements per kind. One select with a large limit gives placements on
    distinct hosts, each accounted as if it had been chosen (selecting once per account would cost far
    more than the accounts at 100,000 hosts)."""
    samples = {k.label: Samples.empty() for k in kinds}
    for kind in kinds:
        while len(samples[kind.label].wall) < runs:
            ranked = sched.select(kind.request, NOW, limit=ACCOUNT_BATCH).ranked
            if not ranked:
                break
            for r in ranked[: runs - len(samples[kind.label].wall)]:
                measure(samples[kind.label], partial(sched.account, r.placement))
    return samples


def run_scale(hosts_n: int, runs: int, kinds: list[Kind]) -> tuple[list[dict[str, object]], dict[str, object]]:
    rnd = random.Random(SEED + hosts_n)
    build_s, hosts = timed(partial(nfv_hosts, hosts_n))
    sched, load = _load(hosts)
    free_pools = statistics.mean(len(h.pools()) for h in hosts)
    info: dict[str, object] = {
        "hosts": hosts_n,
        "build_s": build_s,
        **load,
        "devices_per_host": statistics.mean(h.assignable for h in hosts),
        "free_devices_per_host": statistics.mean(len(h.free) for h in hosts),
        "free_pools_per_host": free_pools,
        "enabled_hosts": sum(h.enabled for h in hosts),
    }
    rows: list[dict[str, object]] = []
    fitting = [k for k in kinds if k.fits]
    for label, s in _decisions(sched, fitting, runs, rnd).items():
        rows.append(s.row(hosts_n, "select", label))
    for kind in (k for k in kinds if not k.fits):
        s, selections = _bounded(partial(sched.select, kind.request, NOW), NOWHERE_RUNS, NOWHERE_BUDGET)
        s.evaluated = [o.evaluated for o in selections]
        s.found = sum(bool(o.ranked) for o in selections)
        rows.append(s.row(hosts_n, "select", kind.label))
        # What the service runs after an empty selection, to tell the user why (every host's verdict).
        s, explanations = _bounded(partial(sched.explain, kind.request, NOW), EXPLAIN_RUNS, EXPLAIN_BUDGET)
        s.evaluated = [len(o.rejections) + len(o.ranked) for o in explanations]
        s.found = sum(bool(o.ranked) for o in explanations)
        rows.append(s.row(hosts_n, "explain", kind.label))
    for label, s in _accounts(sched, fitting, max(1, round(ACCOUNTED * scale()))).items():
        if s.wall:
            rows.append(s.row(hosts_n, "account", label))
    return rows, info


def profile_decisions(hosts_n: int, kinds: list[Kind], top: int = 10) -> str:
    """The functions where mixed decisions at ``hosts_n`` hosts spend their time (cProfile, by own time)."""
    import cProfile  # noqa: PLC0415 - only when a target is missed
    import io  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    sched = Scheduler()
    hosts = nfv_hosts(hosts_n)
    if hosts_n <= REAL_LOAD_MAX:
        sched.load(hosts)
    else:
        bulk_load(sched, hosts)
    fitting = [k for k in kinds if k.fits]
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(100):
        for kind in fitting:
            sched.select(kind.request, NOW)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    factor = scale()
    kinds = request_kinds()
    check_bulk_load(nfv_hosts(max(50, round(1_000 * factor))))
    rows: list[dict[str, object]] = []
    loads: list[dict[str, object]] = []
    load_avg = [os.getloadavg()[0]]
    for hosts_n, runs in SCALES:
        n, r = max(50, round(hosts_n * factor)), max(20, round(runs * factor))
        print(f"... {n} hosts, {r} decisions per request kind", flush=True)
        scale_rows, info = run_scale(n, r, kinds)
        rows += scale_rows
        loads.append(info)
        load_avg.append(os.getloadavg()[0])
    emit("scheduling_latency_load", "Scheduler: building the host states and loading them", loads)
    emit(
        "scheduling_latency",
        "Scheduling decisions (in-process): select per request kind, explain after no valid host, account",
        rows,
    )
    print(f"1-minute load average during the run: {', '.join(f'{x:.2f}' for x in load_avg)} (2 is a full machine)")
    target_n = max(50, round(TARGET_HOSTS * factor))
    at_target = [
        r
        for r in rows
        if r["hosts"] == target_n and r["op"] == "select" and not str(r["request"]).startswith("nowhere")
    ]
    worst = max(at_target, key=lambda r: float(str(r["p99_ms"])))
    wall, cpu = float(str(worst["p99_ms"])), max(float(str(r["cpu_p99_ms"])) for r in at_target)
    verdict = "met" if wall <= TARGET_P99_MS else "MISSED"
    print(
        f"target p99 <= {TARGET_P99_MS} ms per decision at {target_n} hosts: {verdict} "
        f"(worst request kind: {worst['request']}, p99 {wall:.2f} ms wall; worst CPU-time p99 {cpu:.2f} ms)"
    )
    if verdict == "MISSED":
        print(f"\nwhere mixed decisions at {target_n} hosts spend their time (cProfile, own time):")
        print(profile_decisions(target_n, kinds))


if __name__ == "__main__":
    main()
