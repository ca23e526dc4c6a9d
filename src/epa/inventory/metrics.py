"""What the metrics endpoint reads from the database on each scrape: device counts by one GROUP BY,
and each host's enabled flag and last report time (two queries however large the inventory)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from epa.inventory.db import Database
from epa.inventory.schema import DeviceRow, HostRow


@dataclass(frozen=True, slots=True)
class DeviceCount:
    host: str
    dev_type: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class HostReport:
    host: str
    enabled: bool
    last_report_at: datetime | None


@dataclass(frozen=True, slots=True)
class InventoryStats:
    devices: tuple[DeviceCount, ...]
    hosts: tuple[HostReport, ...]


def inventory_stats(db: Database) -> InventoryStats:
    """Device counts per (host, dev_type, status) and every host's report state, sorted by host."""
    counts_q = (
        select(HostRow.name, DeviceRow.dev_type, DeviceRow.status, func.count())
        .join(HostRow, HostRow.id == DeviceRow.host_id)
        .group_by(HostRow.name, DeviceRow.dev_type, DeviceRow.status)
        .order_by(HostRow.name, DeviceRow.dev_type, DeviceRow.status)
    )
    hosts_q = select(HostRow.name, HostRow.enabled, HostRow.last_report_at).order_by(HostRow.name)
    with db.transaction(readonly=True) as session:
        devices = tuple(DeviceCount(h, t, s, n) for h, t, s, n in session.execute(counts_q))
        hosts = tuple(HostReport(h, e, at) for h, e, at in session.execute(hosts_q))
    return InventoryStats(devices, hosts)
