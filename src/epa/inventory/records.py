"""What the inventory functions return: frozen values with ``to_json()`` in the shapes of docs/api.md.

No SQLAlchemy type leaves the inventory layer; these are what the API and the scheduler see."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from epa.domain.device import PciDevice
from epa.domain.host import NumaCell
from epa.domain.port import Port
from epa.domain.server import ClaimedDevice, HostName, ServerId, ServerStatus
from epa.domain.status import DeviceStatus

PrincipalKind = Literal["admin", "agent"]


def iso_utc(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when is not None else None


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A host with its NUMA cells and how many of its devices are in each status."""

    name: str
    enabled: bool
    generation: int
    last_report_at: datetime | None
    numa_cells: tuple[NumaCell, ...] = ()
    device_counts: Mapping[str, int] = field(default_factory=dict)
    device_total: int = 0
    hypervisor: Mapping[str, Any] | None = None
    images: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device as the inventory holds it: what discovery saw plus its state on the server side."""

    host: str
    device: PciDevice
    assignable: bool
    tags: Mapping[str, str]
    status: DeviceStatus
    owner: str | None
    vanished: bool


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """What one inventory report changed. ``added`` includes devices that came back after being
    ``removed``; ``vanished_in_use`` lists every in-use device the report no longer has."""

    generation: int
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    vanished_in_use: tuple[str, ...] = ()
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to: the admin, or the agent of ``host``."""

    kind: PrincipalKind
    host: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def may_act_for(self, host: str) -> bool:
        """True for the admin and for ``host``'s own agent."""
        return self.is_admin or self.host == host


def port_mac(server_id: str, index: int) -> str:
    """A stable, locally administered unicast MAC for a port the user gave none (OpenStack's fa:16:3e
    prefix, then three bytes of a hash of the server and the port)."""
    digest = hashlib.sha256(f"{server_id}/{index}".encode()).digest()
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in digest[:3])


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """A server with its placement: ``host_nodes[i]`` is the host NUMA node of guest node i,
    ``devices`` what it holds (each with its request and port), ``cells`` (host node, cpus, memory_mb)."""

    id: ServerId
    name: str
    status: ServerStatus
    status_reason: str | None
    host: HostName | None
    host_nodes: tuple[int, ...]
    flavor: Mapping[str, Any]
    ports: tuple[Port, ...]
    devices: tuple[ClaimedDevice, ...]
    cells: tuple[tuple[int, int, int], ...]
    domain_uuid: str | None
    created_at: datetime
    updated_at: datetime
    domain_state: str | None = None
    domain_xml: str | None = None
    boot: Mapping[str, Any] | None = None
