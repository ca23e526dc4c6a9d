"""The comparison with Nova: Nova's own ``PciDeviceStats.support_requests`` (what its PciPassthroughFilter
calls once per host, and its NUMATopologyFilter once per candidate host NUMA cell) over the inventory of
``scheduling_latency``, timed per host on a few hundred hosts and multiplied by the hosts of a 10,000-host
cluster that reach Nova's filters, against EPA's whole decision (``Scheduler.select``) on that cluster,
in the same process.

Nova is optional and not in the project's lock (it brings ~130 packages). Without it this prints how to get
it and stops. With EPA_BENCH_NOVA_PYTHON naming a Python that can import nova and numpy, it runs there."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.report import emit
from bench.scheduling_latency import (
    ALIASES,
    NOW,
    SEED,
    Kind,
    nfv_hosts,
    percentiles,
    request_kinds,
    scale,
)
from epa.domain.device import DevType
from epa.domain.port import VnicType
from epa.scheduler.fit import Placement, fit
from epa.scheduler.host_state import HostState
from epa.scheduler.scheduler import Scheduler, SchedulerConfig

NOVA_VERSION = "34.0.0"
NOVA_PYTHON_ENV = "EPA_BENCH_NOVA_PYTHON"
HOSTS = 10_000
SAMPLE = 300  # hosts on which Nova's calls are timed
REPEATS = 5
DECISIONS = 300  # EPA decisions per request kind at HOSTS
# Nova's [scheduler] max_placement_results default: at most this many hosts reach its filters.
PLACEMENT_CAP = 1_000
ALIVE_SECONDS = SchedulerConfig().alive_seconds
ROOT = Path(__file__).resolve().parent.parent
INSTALL = (
    f"python3 -m venv /tmp/nova && /tmp/nova/bin/pip install nova=={NOVA_VERSION} numpy, then "
    f"{NOVA_PYTHON_ENV}=/tmp/nova/bin/python .venv/bin/python -m bench nova_pci_filter"
)


def main() -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # eventlet and oslo announce their deprecations on import
            import nova.pci.stats  # noqa: F401, PLC0415
    except ImportError as e:
        python = os.environ.get(NOVA_PYTHON_ENV)
        if python:
            _run_in(python)
            return
        print(f"nova_pci_filter: skipped, nova is not importable here ({e}); to compare with Nova: {INSTALL}")
        return
    _compare()


def _run_in(python: str) -> None:
    # Without the variable in the child, a Python that cannot import nova either just says so.
    env = {k: v for k, v in os.environ.items() if k != NOVA_PYTHON_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    print(f"nova_pci_filter: nova is not importable here; running in {python}", flush=True)
    done = subprocess.run([python, "-m", "bench", "nova_pci_filter"], cwd=ROOT, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"nova_pci_filter under {python} failed (exit {done.returncode})")


# -- Nova's view of the same hosts and requests -------------------------------------------------------------


@dataclass(slots=True)
class NovaHost:
    state: HostState
    stats: Any  # nova.pci.stats.PciDeviceStats, built as Nova's scheduler HostState builds it
    cells_by_pci: list[int]  # host cell ids in the order numa_fit_instance_to_host tries them for PCI requests


class Nova:
    """Nova's objects and calls, imported only when nova is there."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import nova.conf  # noqa: PLC0415
            from nova import objects, version  # noqa: PLC0415
            from nova.pci import request as pci_request  # noqa: PLC0415
            from nova.pci import stats  # noqa: PLC0415
        objects.register_all()
        # The operator's [pci] alias entries are EPA's, verbatim: EPA reads Nova's syntax.
        aliases = [json.dumps(spec.to_json()) for alias in ALIASES.values() for spec in alias.specs]
        nova.conf.CONF.set_override("alias", aliases, group="pci")
        self.version = version.version_string()
        self.objects = objects
        self.pci_request = pci_request
        self.stats = stats

    def host(self, state: HostState) -> NovaHost:
        o = self.objects
        pools = []
        for pool in state.pools():
            vendor, product, dev_type, numa, parent, tags, netdev = pool.key
            # What a compute node reports (PciDeviceStats pools, as stored in compute_nodes.pci_stats).
            d: dict[str, Any] = {
                "vendor_id": vendor,
                "product_id": product,
                "numa_node": numa,
                "dev_type": dev_type.value,
                "address": str(parent or pool.slots[0].address),
                "count": pool.count,
                **dict(tags),
            }
            if dev_type in (DevType.PF, DevType.VF):
                d["remote_managed"] = "false"
            if dev_type is DevType.VF and netdev:
                d["parent_ifname"] = f"enp{parent.bus if parent else 0}s0f{parent.function if parent else 0}"
            pools.append(o.PciDevicePool.from_dict(d))
        cells = []
        for c in state.cells.values():
            first = c.node * c.cpus
            cells.append(
                o.NUMACell(
                    id=c.node,
                    cpuset=set(range(first, first + c.cpus)),
                    pcpuset=set(),
                    memory=c.memory_mb,
                    cpu_usage=c.used_cpus,
                    memory_usage=c.used_memory_mb,
                    pinned_cpus=set(),
                    siblings=[{first + i, first + i + c.cpus // 2} for i in range(c.cpus // 2)],
                    mempages=[
                        o.NUMAPagesTopology(size_kb=4, total=c.memory_mb * 256, used=0, reserved=0),
                        o.NUMAPagesTopology(size_kb=2048, total=0, used=0, reserved=0),
                        o.NUMAPagesTopology(size_kb=1048576, total=0, used=0, reserved=0),
                    ],
                    network_metadata=o.NetworkMetadata(physnets=set(), tunneled=False),
                    socket=c.socket,
                )
            )
        stats = self.stats.PciDeviceStats(o.NUMATopology(cells=cells), stats=o.PciDevicePoolList(objects=pools))
        # numa_fit_instance_to_host tries the host cells with the most free PCI devices first.
        per_cell = {n: sum(p.count for p in state.pools() if p.numa_node == n) for n in state.cells}
        return NovaHost(state, stats, sorted(state.cells, key=lambda n: -per_cell[n]))

    def requests(self, kind: Kind) -> list[Any]:
        """The InstancePCIRequests Nova makes for the flavor (its alias text) and the SR-IOV ports."""
        o = self.objects
        policy = kind.flavor.numa_policy.value if kind.flavor.numa_policy is not None else None
        extra = {"pci_passthrough:alias": kind.flavor.pci_alias} if kind.flavor.pci_alias else {}
        flavor = o.Flavor(name=kind.flavor.name, flavorid=kind.flavor.name, extra_specs=extra)
        out = list(self.pci_request.get_pci_requests_from_flavor(flavor, policy).requests)
        for port in kind.ports:
            # As nova.network.neutron builds it for a port with an SR-IOV vnic_type.
            spec = {"physical_network": port.physical_network, "remote_managed": "False"}
            if port.vnic_type is VnicType.DIRECT_PHYSICAL:
                spec["dev_type"] = "type-PF"
            request = o.InstancePCIRequest(count=1, spec=[spec], request_id=str(uuid.uuid4()))
            if policy:
                request.numa_policy = policy
            out.append(request)
        return out

    def guest_cell(self, kind: Kind, host_cell: int) -> Any:
        r = kind.request
        return self.objects.InstanceNUMACell(
            id=host_cell, cpuset=set(range(r.vcpus)), pcpuset=set(), memory=r.memory_mb, pagesize=None
        )


def _reaches_filters(host: HostState, kind: Kind) -> bool:
    """Whether Nova would run its PCI filter on ``host``: enabled and up (ComputeFilter), with the
    vCPUs and memory (placement's allocation candidates)."""
    r = kind.request
    return (
        host.enabled
        and host.last_report is not None
        and NOW - host.last_report <= ALIVE_SECONDS
        and host.free_cpus >= r.vcpus
        and host.free_memory_mb >= r.memory_mb
    )


def _cell_fits(host: HostState, node: int, kind: Kind) -> bool:
    cell = host.cells[node]
    return cell.free_cpus >= kind.request.vcpus and cell.free_memory_mb >= kind.request.memory_mb


def _per_host_us(loop: Callable[[], object], hosts: int) -> float:
    totals = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        loop()
        totals.append(time.perf_counter() - t0)
    return statistics.median(totals) / hosts * 1e6


def _epa_decisions(sched: Scheduler, kinds: Sequence[Kind], runs: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {k.label: [] for k in kinds}
    # A request that fits nowhere costs tens of milliseconds (every host passing the index is fitted).
    schedule = [k for k in kinds for _ in range(runs if k.fits else min(runs, 30))]
    random.Random(SEED).shuffle(schedule)
    for kind in kinds:
        for _ in range(5):
            sched.select(kind.request, NOW)
    for kind in schedule:
        t0 = time.perf_counter()
        sched.select(kind.request, NOW)
        samples[kind.label].append(time.perf_counter() - t0)
    return {label: percentiles(s) for label, s in samples.items()}


def _filter_calls(sample: Sequence[NovaHost], requests: list[Any], mapping: dict[str, Any]) -> list[bool]:
    """PciPassthroughFilter: one call per host (and allocation candidate; one here)."""
    return [h.stats.support_requests(requests, mapping) for h in sample]


def _numa_calls(
    nova: Nova,
    sample: Sequence[NovaHost],
    passed: Sequence[bool],
    requests: list[Any],
    mapping: dict[str, Any],
    kind: Kind,
) -> list[tuple[int, bool]]:
    """NUMATopologyFilter (numa_fit_instance_to_host) on the hosts the PCI filter passed: one call per host
    cell that has the vCPUs and memory, until one fits. Returns (calls, fits) per host."""
    out = []
    for h, ok in zip(sample, passed, strict=True):
        calls, found = 0, False
        for cell in h.cells_by_pci if ok else ():
            if not _cell_fits(h.state, cell, kind):
                continue
            calls += 1
            if h.stats.support_requests(requests, mapping, [nova.guest_cell(kind, cell)]):
                found = True
                break
        out.append((calls, found))
    return out


def _epa_fits(sample: Sequence[NovaHost], kind: Kind) -> list[bool]:
    return [isinstance(fit(h.state, kind.request, now=NOW, alive_seconds=ALIVE_SECONDS), Placement) for h in sample]


def _compare_kind(
    nova: Nova, kind: Kind, hosts: Sequence[HostState], sample_n: int, epa: dict[str, float]
) -> dict[str, object]:
    reaching = [h for h in hosts if _reaches_filters(h, kind)]
    sample = [nova.host(h) for h in reaching[:sample_n]]
    requests = nova.requests(kind)
    mapping = {"": [str(uuid.uuid4())]}  # the allocation candidate's root provider; no PCI in placement
    passed = _filter_calls(sample, requests, mapping)
    numa = _numa_calls(nova, sample, passed, requests, mapping, kind)
    nova_fits = sum(found for _, found in numa)
    filter_us = _per_host_us(partial(_filter_calls, sample, requests, mapping), len(sample))
    numa_us = _per_host_us(partial(_numa_calls, nova, sample, passed, requests, mapping, kind), len(sample))
    epa_us = _per_host_us(partial(_epa_fits, sample, kind), len(sample))
    nova_ms = (filter_us + numa_us) * len(reaching) / 1e3
    return {
        "request": kind.label,
        "reach_filters": len(reaching),
        "sampled": len(sample),
        "nova_filter_us": filter_us,
        "numa_calls": statistics.mean(calls for calls, _ in numa),
        "nova_us_per_host": filter_us + numa_us,
        "epa_fit_us_per_host": epa_us,
        "nova_ms": nova_ms,
        f"nova_ms_cap{PLACEMENT_CAP}": (filter_us + numa_us) * min(len(reaching), PLACEMENT_CAP) / 1e3,
        "epa_p50_ms": epa["p50_ms"],
        "epa_p99_ms": epa["p99_ms"],
        "nova/epa_p50": nova_ms / epa["p50_ms"],
        "fits_nova/epa": f"{nova_fits}/{sum(_epa_fits(sample, kind))}",
    }


def _compare() -> None:
    factor = scale()
    hosts_n = max(100, round(HOSTS * factor))
    sample_n = max(30, round(SAMPLE * factor))
    nova = Nova()
    kinds = [k for k in request_kinds() if k.request.devices]  # Nova runs no PCI code for the others
    hosts = nfv_hosts(hosts_n)
    print(f"... Nova {nova.version} vs EPA, {hosts_n} hosts, Nova timed on {sample_n} of them", flush=True)
    sched = Scheduler()
    sched.load(hosts)
    epa = _epa_decisions(sched, kinds, max(30, round(DECISIONS * factor)))
    rows = [_compare_kind(nova, kind, hosts, sample_n, epa[kind.label]) for kind in kinds]
    emit(
        "nova_pci_filter",
        f"{hosts_n} hosts: Nova {nova.version}'s PciDeviceStats.support_requests, timed per host on {sample_n} "
        "hosts and multiplied by the hosts that reach its filters, vs EPA's whole select",
        rows,
    )
    print(
        "Nova's time counts support_requests only (its PciPassthroughFilter call and NUMATopologyFilter's per-cell "
        "calls); not its other filters, weighers, the placement query, or rebuilding each host's PciDeviceStats "
        f"per request. Placement's default max_placement_results caps the hosts that reach the filters at "
        f"{PLACEMENT_CAP}. nova {nova.version} from {Path(nova.stats.__file__).parent.parent}"
    )
