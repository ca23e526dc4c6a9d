"""Placement packing: how many servers a cluster takes before its first refusal, and what is left
stranded, under each placement policy, for seeded mixed request streams.

The cluster: ``HOSTS`` hosts of two NUMA nodes (32 vCPUs, 128 GiB each); per node, on its own root
complex, a PCIe switch holding two GPUs and one 8-VF NIC PF, and two 8-VF NIC PFs on root ports. The
request kinds (``KINDS``): a VM with one ``direct`` port, an NFV server with two ``direct`` ports on
distinct PFs, a DPDK server with a ``direct-physical`` port (a whole PF), an ML server with a GPU and a
port under one switch, a two-GPU server under one switch, and a server with no devices. Each stream
draws kinds by its own weights from a seeded generator; every policy gets the same stream and places
servers until its first refusal.

Policies:
- ``first-fit``: hosts in name order, devices by lowest address (NUMA policies and groups kept);
- ``spread`` / ``pack``: EPA's weighers before this change (emptiest / fullest host by CPU and memory),
  with its in-host search;
- ``fragmentation``: pack, and rank hosts by what the device choice breaks (whole PFs split, whole
  switches opened), so that whole PFs stay for ``direct-physical`` and whole switches for groups.

Stranded devices: free GPUs and VFs on hosts that can no longer take the smallest device server (2
vCPUs, 4 GiB on one node). Nova's PCI filter and weighers are not run here (see ``nova_pci_filter``
for how to install Nova 34; its PCI placement is first-fit per pool, closest to ``first-fit``).
``EPA_BENCH_SCALE`` scales the number of hosts and streams. The search's cost weights were tuned on
seeds 11, 23 and 37; seeds 41, 53 and 67 are held out (marked in the table)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.report import emit, scale
from epa.domain.address import PciAddress
from epa.domain.alias import parse_aliases
from epa.domain.device import DevType
from epa.domain.flavor import Flavor
from epa.domain.port import Port, VnicType
from epa.scheduler.fit import Placement, fit
from epa.scheduler.host_state import Cell, HostState, Slot
from epa.scheduler.request import ServerRequest, build_request
from epa.scheduler.scheduler import Scheduler, SchedulerConfig
from epa.scheduler.search import FIRST_FIT
from epa.scheduler.weigh import WeighConfig

NOW = 1_000_000.0
HOSTS = 16
# The search's cost weights (scheduler.search) were chosen on the first three seeds; the last three are
# held out: the table marks them.
SEEDS = (11, 23, 37, 41, 53, 67)
HELD_OUT = (41, 53, 67)
CELL_CPUS = 64
CELL_MEMORY_MB = 256 * 1024
NET = (("physical_network", "physnet1"),)
ALIASES = parse_aliases([{"name": "gpu", "vendor_id": "10de", "product_id": "20b5", "numa_policy": "required"}])


def _flavor(name: str, vcpus: int, gib: int, pci: str = "", group: str = "") -> Flavor:
    body = {"name": name, "vcpus": vcpus, "memory_mb": gib * 1024, "pci_passthrough:alias": pci, "pci_group": group}
    return Flavor.parse({**body, "numa_policy": "required"}, ALIASES)


def _kinds() -> dict[str, ServerRequest]:
    direct, physical = Port("physnet1"), Port("physnet1", VnicType.DIRECT_PHYSICAL)
    return {
        "vm": build_request(_flavor("vm", 2, 4), ALIASES, (direct,)),
        "nfv": build_request(_flavor("nfv", 4, 8, group="distinct_pf(port:0, port:1)"), ALIASES, (direct, direct)),
        "dpdk": build_request(_flavor("dpdk", 6, 12), ALIASES, (physical,)),
        "ml": build_request(_flavor("ml", 8, 32, "gpu:1", "same_switch(gpu, port:0)"), ALIASES, (direct,)),
        "ml2": build_request(_flavor("ml2", 12, 48, "gpu:2", "same_switch(gpu)"), ALIASES),
        "plain": build_request(_flavor("plain", 4, 8), ALIASES),
    }


KINDS = _kinds()
# Weights per stream: balanced, PF-heavy, GPU-heavy, VF-heavy.
MIXES: dict[str, dict[str, int]] = {
    "balanced": {"vm": 30, "nfv": 20, "dpdk": 15, "ml": 15, "ml2": 10, "plain": 10},
    "pf-heavy": {"vm": 30, "nfv": 15, "dpdk": 35, "ml": 10, "ml2": 5, "plain": 5},
    "gpu-heavy": {"vm": 25, "nfv": 10, "dpdk": 10, "ml": 30, "ml2": 20, "plain": 5},
    "vf-heavy": {"vm": 45, "nfv": 30, "dpdk": 10, "ml": 5, "ml2": 5, "plain": 5},
}


def _host(index: int) -> HostState:
    slots: list[Slot] = []
    for node in (0, 1):
        bus = 0x80 * node
        root = f"pci0000:{bus:02x}"
        switch = PciAddress(0, bus + 0x10, 0, 0)
        for i in range(2):
            slots.append(
                Slot(
                    PciAddress(0, bus + 0x12 + i, 0, 0),
                    "10de",
                    "20b5",
                    DevType.PCI,
                    node,
                    None,
                    (),
                    False,
                    root,
                    switch,
                )
            )
        pfs = [
            (PciAddress(0, bus + 0x20, 0, 0), switch),
            (PciAddress(0, bus + 0x30, 0, 0), None),
            (PciAddress(0, bus + 0x30, 0, 1), None),
        ]
        for pf, sw in pfs:
            slots.append(Slot(pf, "8086", "1572", DevType.PF, node, None, NET, True, root, sw))
            for vf in range(8):
                addr = PciAddress(0, pf.bus + 1 + pf.function, 0, vf)
                slots.append(Slot(addr, "8086", "154c", DevType.VF, node, pf, NET, True, root, sw))
    cells = [Cell(n, CELL_CPUS, CELL_MEMORY_MB, n) for n in (0, 1)]
    return HostState.build(f"host{index:03d}", True, NOW, cells, slots, {}, len(slots))


def _stream(mix: str, seed: int, length: int) -> list[str]:
    rng = random.Random(f"{mix}/{seed}")
    names, weights = zip(*MIXES[mix].items(), strict=True)
    return rng.choices(names, weights=weights, k=length)


Policy = Callable[[list[HostState], ServerRequest], Placement | None]


def _first_fit(hosts: list[HostState], request: ServerRequest) -> Placement | None:
    for host in hosts:
        result = fit(host, request, now=NOW, alive_seconds=300, spread=False, costs=FIRST_FIT)
        if isinstance(result, Placement):
            return result
    return None


def _weighed(config: WeighConfig) -> Callable[[], Policy]:
    def make() -> Policy:
        scheduler: Scheduler | None = None

        def place(hosts: list[HostState], request: ServerRequest) -> Placement | None:
            nonlocal scheduler
            if scheduler is None:
                scheduler = Scheduler(SchedulerConfig(weigh=config))
                scheduler.load(hosts)
            ranked = scheduler.select(request, NOW, limit=1).ranked
            return ranked[0].placement if ranked else None

        return place

    return make


POLICIES: dict[str, Callable[[], Policy]] = {
    "first-fit": lambda: _first_fit,
    "spread": _weighed(WeighConfig.policy("spread")),
    "pack": _weighed(WeighConfig.policy("pack")),
    "fragmentation": _weighed(WeighConfig.policy("fragmentation")),
}


@dataclass(slots=True)
class Outcome:
    placed: int
    refused: str
    stranded: int
    whole_pfs: int
    whole_switches: int
    seconds: float


def run(policy: Policy, hosts_count: int, stream: list[str]) -> Outcome:
    hosts = [_host(i) for i in range(hosts_count)]
    by_name = {h.name: h for h in hosts}
    placed = 0
    refused = "-"
    t0 = time.perf_counter()
    for kind in stream:
        placement = policy(hosts, KINDS[kind])
        if placement is None:
            refused = kind
            break
        # The weighed policies' scheduler holds these same HostState objects: one take() updates both.
        by_name[placement.host].take(placement.all_devices, placement.cpus_by_node, placement.memory_by_node)
        placed += 1
    seconds = time.perf_counter() - t0
    stranded = whole_pfs = whole_switches = 0
    for h in hosts:
        if not any(c.free_cpus >= 2 and c.free_memory_mb >= 4096 for c in h.cells.values()):
            stranded += sum(1 for s in h.free.values() if s.dev_type is not DevType.PF)
        whole_pfs += sum(1 for s in h.free.values() if s.dev_type is DevType.PF)
        whole_switches += len({s.switch for s in h.free.values() if s.switch is not None} - h.busy_switches)
    return Outcome(placed, refused, stranded, whole_pfs, whole_switches, seconds)


def main() -> None:
    factor = scale()
    hosts_count = max(2, round(HOSTS * factor))
    seeds = SEEDS if factor >= 1 else SEEDS[:1]
    length = hosts_count * 64  # more than any cluster here can take
    rows: list[dict[str, object]] = []
    deltas: list[int] = []
    for mix in MIXES:
        for seed in seeds:
            stream = _stream(mix, seed, length)
            results = {name: run(make(), hosts_count, stream) for name, make in POLICIES.items()}
            best_other = max(r.placed for n, r in results.items() if n != "fragmentation")
            frag = results["fragmentation"].placed
            deltas.append(frag - best_other)
            for name, r in results.items():
                rows.append(
                    {
                        "stream": f"{mix}/{seed}" + (" (held out)" if seed in HELD_OUT else ""),
                        "policy": name,
                        "placed": r.placed,
                        "vs_best_other": f"{frag - best_other:+d}" if name == "fragmentation" else "",
                        "first_refused": r.refused,
                        "stranded": r.stranded,
                        "whole_pfs_left": r.whole_pfs,
                        "whole_switches_left": r.whole_switches,
                        "seconds": round(r.seconds, 2),
                    }
                )
    load = os.getloadavg()[0]
    title = (
        f"Servers placed before the first refusal, {hosts_count} hosts, "
        f"{len(deltas)} streams; fragmentation against the best other policy: more on "
        f"{sum(d > 0 for d in deltas)}, as many on {sum(d == 0 for d in deltas)}, fewer on "
        f"{sum(d < 0 for d in deltas)} (net {sum(deltas):+d} servers); load average {load:.2f}"
    )
    emit("placement_packing", title, rows)
