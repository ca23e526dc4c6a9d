"""What an agent tells the server about its host: NUMA cells and classified devices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from epa.domain.device_spec import ClassifiedDevice
from epa.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class NumaCell:
    """One NUMA node of a host: its CPUs, its memory and the socket it belongs to."""

    node: int
    cpus: tuple[int, ...]
    memory_mb: int
    socket: int | None = None

    def __post_init__(self) -> None:
        if self.node < 0:
            raise InvalidInput(f"numa_cells: node ({self.node}) must be >= 0")
        if self.memory_mb < 0:
            raise InvalidInput(f"numa_cells[{self.node}]: memory_mb ({self.memory_mb}) must be >= 0")
        if len(set(self.cpus)) != len(self.cpus) or any(c < 0 for c in self.cpus):
            raise InvalidInput(f"numa_cells[{self.node}]: cpus {list(self.cpus)} must be distinct and >= 0")

    def to_json(self) -> dict[str, object]:
        return {
            "node": self.node,
            "socket": self.socket,
            "cpus": list(self.cpus),
            "memory_mb": self.memory_mb,
        }


@dataclass(frozen=True, slots=True)
class HostReport:
    """A host's full inventory as its agent saw it."""

    numa_cells: tuple[NumaCell, ...]
    devices: tuple[ClassifiedDevice, ...]

    def __post_init__(self) -> None:
        nodes = [c.node for c in self.numa_cells]
        if len(set(nodes)) != len(nodes):
            raise InvalidInput(f"numa_cells: node ids {nodes} are not distinct")
        seen: set[str] = set()
        for c in self.devices:
            addr = str(c.device.address)
            if addr in seen:
                raise InvalidInput(f"devices: address {addr} is reported twice")
            seen.add(addr)


def parse_cpulist(text: str, where: str = "cpulist") -> tuple[int, ...]:
    """Parse the kernel's cpulist format (``0-3,8,10-11``); empty text is no CPUs."""
    out: list[int] = []
    for raw in text.strip().split(","):
        part = raw.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise InvalidInput(f"{where}: {text.strip()!r} is not a CPU list (bad part {part!r})")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            raise InvalidInput(f"{where}: range {part!r} runs backwards")
        out.extend(range(first, last + 1))
    return tuple(out)


def format_cpulist(cpus: Iterable[int]) -> str:
    """The kernel's cpulist form of ``cpus``: ``0-3,8,10-11`` (empty for no CPUs)."""
    parts: list[str] = []
    run: list[int] = []
    for cpu in sorted(set(cpus)):
        if run and cpu != run[-1] + 1:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(cpu)
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)
