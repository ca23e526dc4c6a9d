"""Weighers: rank the hosts a request fits on. Higher is better; ties go to the host name.

- CPU and RAM: ``spread`` prefers the host with the most free left, ``pack`` the least.
- PCI: a server that asks for no devices prefers hosts with fewer assignable devices, so hosts with
  devices stay free for servers that need them.
- Image: a host whose image cache already holds every part of the server's image ranks above one
  that would fetch it first (``image_multiplier``, small: it settles near-ties, not real differences
  in free capacity).
- Affinity: a placement whose ``preferred``/``socket`` devices sit off the guest's NUMA nodes ranks below
  one where they are local.
- Fragmentation (``fragmentation_multiplier``, 0 unless the ``fragmentation`` policy is chosen): a
  placement that splits a whole PF or opens a whole PCIe switch (``scheduler.search``'s cost) ranks
  below one on a host where the server's devices break nothing new, so whole PFs stay for
  ``direct-physical`` and whole switches for ``pci_group`` servers.

``host_score`` depends only on the host and the request (not on which cells or devices fit was chosen),
so the index can compute it for every host at once; ``placement_score`` subtracts the affinity and
fragmentation terms."""

from __future__ import annotations

from dataclasses import dataclass

from epa.scheduler.fit import Placement
from epa.scheduler.host_state import HostState
from epa.scheduler.request import ServerRequest
from epa.scheduler.search import AFFINITY, SPLIT

POLICIES = ("spread", "pack", "fragmentation")


@dataclass(frozen=True, slots=True)
class WeighConfig:
    spread: bool = True
    ram_multiplier: float = 1.0
    cpu_multiplier: float = 1.0
    pci_multiplier: float = 1.0
    affinity_multiplier: float = 10.0
    image_multiplier: float = 0.1
    fragmentation_multiplier: float = 0.0

    @classmethod
    def policy(cls, name: str) -> WeighConfig:
        """The named placement policy: ``spread``, ``pack``, or ``fragmentation`` (pack CPUs and memory,
        and above that keep whole PFs and switches whole across the cluster)."""
        if name not in POLICIES:
            raise ValueError(f"placement policy {name!r} must be one of {', '.join(POLICIES)}")
        if name == "fragmentation":
            return cls(spread=False, fragmentation_multiplier=1.0)
        return cls(spread=name == "spread")


def host_score(host: HostState, request: ServerRequest, config: WeighConfig, max_assignable: int) -> float:
    total_mem = host.total_memory_mb
    total_cpus = sum(c.cpus for c in host.cells.values())
    mem = (host.free_memory_mb - request.memory_mb) / total_mem if total_mem > 0 else 0.0
    cpu = (host.free_cpus - request.vcpus) / total_cpus if total_cpus > 0 else 0.0
    score = config.ram_multiplier * mem + config.cpu_multiplier * cpu
    if not config.spread:
        score = -score
    if not request.wants_devices and max_assignable > 0:
        score -= config.pci_multiplier * host.assignable / max_assignable
    if host.holds_image(request):
        score += config.image_multiplier
    return score


def placement_score(base: float, placement: Placement, request: ServerRequest, config: WeighConfig) -> float:
    broken = (placement.cost - AFFINITY * placement.affinity_misses) / SPLIT  # 1.0: one whole PF split
    score = base - config.fragmentation_multiplier * broken
    wanted = sum(r.count for r in request.devices)
    return score - config.affinity_multiplier * placement.affinity_misses / wanted if wanted else score
