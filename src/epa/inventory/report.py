"""Apply an agent's inventory report to a host, in one transaction guarded by the host generation.

The generation is Placement's optimistic concurrency: the report names the generation the agent
last saw, and a conditional UPDATE bumps it only if it is still current, so of two reports sent
against one generation exactly one applies. The diff is done in memory from one SELECT of the host's
devices and written back with one bulk INSERT and one bulk UPDATE, whatever the number of devices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from epa.domain.host import HostReport
from epa.domain.status import DeviceStatus, check_transition
from epa.errors import GenerationConflict, NotFound
from epa.inventory._rows import COLUMNS, REPORTED, reported_columns, settle_host
from epa.inventory.changes import mark_changed
from epa.inventory.db import Database
from epa.inventory.records import ReportOutcome
from epa.inventory.schema import Base, DeviceRow, HostRow, NumaCellRow, utcnow

_S = DeviceStatus
_DEVICES = Base.metadata.tables["devices"]
_UPDATE_COLUMNS = (*REPORTED, "status", "vanished", "updated_at")
_UPDATE_DEVICE = (
    update(_DEVICES).where(_DEVICES.c.id == bindparam("row_id")).values({c: bindparam(c) for c in _UPDATE_COLUMNS})
)


def apply_report(
    db: Database, host_name: str, generation: int, report: HostReport, now: datetime | None = None
) -> ReportOutcome:
    """Reconcile ``host_name``'s devices and NUMA cells with ``report``; see docs/api.md."""
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError(f"apply_report: now ({now!r}) must be timezone-aware")
    with db.transaction() as session:
        host_id = session.execute(
            update(HostRow)
            .where(HostRow.name == host_name, HostRow.generation == generation)
            .values(generation=HostRow.generation + 1, last_report_at=now)
            .returning(HostRow.id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if host_id is None:
            current = session.execute(select(HostRow.generation).where(HostRow.name == host_name)).scalar_one_or_none()
            if current is None:
                raise NotFound(f"host {host_name!r} does not exist")
            raise GenerationConflict(
                f"host {host_name}: the report was made at generation {generation}, "
                f"but the host is at generation {current}; read the host and report again",
                current=current,
            )
        mark_changed(session, [host_id])

        session.execute(delete(NumaCellRow).where(NumaCellRow.host_id == host_id))
        if report.numa_cells:
            session.execute(
                insert(NumaCellRow),
                [
                    {
                        "host_id": host_id,
                        "node": c.node,
                        "socket": c.socket,
                        "cpus": list(c.cpus),
                        "memory_mb": c.memory_mb,
                    }
                    for c in report.numa_cells
                ],
            )

        stored = {
            row["address"]: dict(row)
            for row in session.execute(select(*COLUMNS).where(DeviceRow.host_id == host_id)).mappings()
        }
        outcome = _diff(stored, report, host_id, now)
        rows = [*stored.values(), *outcome.new_rows]
        statuses = {r["address"]: _S(r["status"]) for r in rows}
        for address, status in settle_host(rows, statuses, strict=False).items():
            row = stored.get(address) or outcome.new_by_address[address]
            row["status"] = status.value
            if address in stored:
                outcome.touched.add(address)

        # Core statements on the table with one set of keys: one executemany each. (The ORM's bulk
        # forms split the rows into batches by which values are None.)
        if outcome.new_rows:
            session.execute(insert(_DEVICES), outcome.new_rows)
        changed = [_update_params(stored[a], now) for a in sorted(outcome.touched)]
        if changed:
            session.execute(_UPDATE_DEVICE, changed)
        return ReportOutcome(
            generation=generation + 1,
            added=tuple(sorted(outcome.added)),
            updated=tuple(sorted(outcome.updated)),
            removed=tuple(sorted(outcome.removed)),
            vanished_in_use=tuple(sorted(outcome.vanished_in_use)),
            unchanged=outcome.unchanged,
        )


class _Diff:
    """The report's effect, row by row: stored rows are edited in place and listed in ``touched``."""

    def __init__(self) -> None:
        self.new_rows: list[dict[str, Any]] = []
        self.new_by_address: dict[str, dict[str, Any]] = {}
        self.touched: set[str] = set()
        self.added: list[str] = []
        self.updated: list[str] = []
        self.removed: list[str] = []
        self.vanished_in_use: list[str] = []
        self.unchanged = 0


def _diff(stored: dict[str, dict[str, Any]], report: HostReport, host_id: int, now: datetime) -> _Diff:
    out = _Diff()
    seen: set[str] = set()
    for classified in report.devices:
        address = str(classified.device.address)
        seen.add(address)
        columns = reported_columns(classified)
        row = stored.get(address)
        if row is None:
            new = {
                "host_id": host_id,
                "address": address,
                **columns,
                "status": _S.AVAILABLE.value,
                "owner": None,
                "vanished": False,
                "updated_at": now,
            }
            out.new_rows.append(new)
            out.new_by_address[address] = new
            out.added.append(address)
            continue
        old_status = _S(row["status"])
        fields_changed = any(row[k] != v for k, v in columns.items())
        if fields_changed:
            row.update(columns)
        if old_status is _S.REMOVED:
            # Back on the host: free again (the family rule below may make it unavailable).
            check_transition(address, old_status, _S.AVAILABLE)
            row["status"] = _S.AVAILABLE.value
            out.added.append(address)
        elif row["vanished"]:
            row["vanished"] = False
            out.updated.append(address)
        elif fields_changed:
            out.updated.append(address)
        else:
            out.unchanged += 1
            continue
        out.touched.add(address)

    for address, row in stored.items():
        if address in seen:
            continue
        status = _S(row["status"])
        if status.in_use:
            # Still someone's: keep it, so that releasing it later finds it, and say so every time.
            out.vanished_in_use.append(address)
            if not row["vanished"]:
                row["vanished"] = True
                out.touched.add(address)
        elif status is not _S.REMOVED:
            check_transition(address, status, _S.REMOVED)
            row["status"] = _S.REMOVED.value
            out.removed.append(address)
            out.touched.add(address)
    return out


def _update_params(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Parameters for the bulk UPDATE by primary key: every column a report or settling may change."""
    params = {k: row[k] for k in _UPDATE_COLUMNS if k != "updated_at"}
    params.update(row_id=row["id"], updated_at=now)
    return params
