"""A column store of every host's free capacity, so that one request pre-filters and ranks thousands
of hosts with a few array operations instead of a Python loop per host.

Per host: enabled, last report time, free/total vCPUs and memory, NUMA cell count, assignable device
count, and free devices per *signature* (vendor, product, type, tags, netdev; NUMA and parent PF left
out). A host that passes here may still fail the exact fit (NUMA policies, PF/VF rules); a host that
fails here cannot fit."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from epa.scheduler.host_state import HostState, Signature
from epa.scheduler.request import ServerRequest
from epa.scheduler.weigh import WeighConfig

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


class HostIndex:
    def __init__(self, capacity: int = 64) -> None:
        self.names: list[str] = []
        self.position: dict[str, int] = {}
        self.signatures: dict[Signature, int] = {}
        self._capacity = capacity
        self.enabled: Bools = np.zeros(capacity, dtype=np.bool_)
        self.present: Bools = np.zeros(capacity, dtype=np.bool_)
        self.last_report: Floats = np.full(capacity, np.nan)
        self.free_cpus: Ints = np.zeros(capacity, dtype=np.int64)
        self.total_cpus: Ints = np.zeros(capacity, dtype=np.int64)
        self.free_mem: Ints = np.zeros(capacity, dtype=np.int64)
        self.total_mem: Ints = np.zeros(capacity, dtype=np.int64)
        self.cells: Ints = np.zeros(capacity, dtype=np.int64)
        self.assignable: Ints = np.zeros(capacity, dtype=np.int64)
        self.name_rank: Ints = np.zeros(capacity, dtype=np.int64)
        self.sig_free: Ints = np.zeros((capacity, 8), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.position)

    def _grow(self, rows: int, cols: int) -> None:
        if rows > self._capacity:
            new = max(rows, self._capacity * 2)
            for attr in (
                "enabled",
                "present",
                "last_report",
                "free_cpus",
                "total_cpus",
                "free_mem",
                "total_mem",
                "cells",
                "assignable",
                "name_rank",
            ):
                old = getattr(self, attr)
                fill = np.nan if attr == "last_report" else 0
                grown = np.full(new, fill, dtype=old.dtype)
                grown[: self._capacity] = old
                setattr(self, attr, grown)
            sig = np.zeros((new, self.sig_free.shape[1]), dtype=np.int64)
            sig[: self._capacity] = self.sig_free
            self.sig_free = sig
            self._capacity = new
        if cols > self.sig_free.shape[1]:
            sig = np.zeros((self._capacity, max(cols, self.sig_free.shape[1] * 2)), dtype=np.int64)
            sig[:, : self.sig_free.shape[1]] = self.sig_free
            self.sig_free = sig

    def upsert(self, host: HostState) -> None:
        row = self.position.get(host.name)
        if row is None:
            row = len(self.names)
            self.names.append(host.name)
            self.position[host.name] = row
            self._grow(row + 1, len(self.signatures))
            order = sorted(range(len(self.names)), key=self.names.__getitem__)
            self.name_rank[order] = np.arange(len(order))
        counts = host.signature_counts()
        for sig in counts:
            if sig not in self.signatures:
                self.signatures[sig] = len(self.signatures)
        self._grow(row + 1, len(self.signatures))
        self.present[row] = True
        self.enabled[row] = host.enabled
        self.last_report[row] = np.nan if host.last_report is None else host.last_report
        self.free_cpus[row] = host.free_cpus
        self.total_cpus[row] = sum(c.cpus for c in host.cells.values())
        self.free_mem[row] = host.free_memory_mb
        self.total_mem[row] = host.total_memory_mb
        self.cells[row] = len(host.cells)
        self.assignable[row] = host.assignable
        self.sig_free[row, :] = 0
        for sig, n in counts.items():
            self.sig_free[row, self.signatures[sig]] = n

    def remove(self, name: str) -> None:
        row = self.position.get(name)
        if row is not None:
            self.present[row] = False
            self.enabled[row] = False

    def max_assignable(self) -> int:
        n = len(self.names)
        return int(self.assignable[:n][self.present[:n]].max(initial=0))

    def ranked(
        self, request: ServerRequest, now: float, alive_seconds: float, config: WeighConfig
    ) -> tuple[list[str], Floats]:
        """Hosts that may fit, best first by ``host_score``, and their scores."""
        n = len(self.names)
        with np.errstate(invalid="ignore"):
            alive = (now - self.last_report[:n]) <= alive_seconds
        mask = (
            self.present[:n]
            & self.enabled[:n]
            & alive
            & (self.free_cpus[:n] >= request.vcpus)
            & (self.free_mem[:n] >= request.memory_mb)
            & (self.cells[:n] >= request.numa_nodes)
        )
        for req in request.devices:
            cols = [
                col
                for (vendor, product, dev_type, tags, netdev), col in self.signatures.items()
                if any(m.matches(vendor, product, dev_type, dict(tags), netdev) for m in req.alternatives)
            ]
            if not cols:
                mask &= False
                break
            mask &= self.sig_free[:n, cols].sum(axis=1) >= req.count
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return [], np.zeros(0)
        total_mem = self.total_mem[rows].astype(np.float64)
        total_cpu = self.total_cpus[rows].astype(np.float64)
        mem = np.divide(
            self.free_mem[rows] - request.memory_mb, total_mem, out=np.zeros(rows.size), where=total_mem > 0
        )
        cpu = np.divide(self.free_cpus[rows] - request.vcpus, total_cpu, out=np.zeros(rows.size), where=total_cpu > 0)
        score = config.ram_multiplier * mem + config.cpu_multiplier * cpu
        if not config.spread:
            score = -score
        top = self.max_assignable()
        if not request.wants_devices and top > 0:
            score = score - config.pci_multiplier * self.assignable[rows] / top
        order = np.lexsort((self.name_rank[rows], -score))
        return [self.names[r] for r in rows[order]], score[order]
