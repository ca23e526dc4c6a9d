"""Liveness apart from inventory: heartbeats of many hosts recorded in one short transaction.

A heartbeat says "host H is alive and holds generation G". Recording it moves ``last_report_at`` and
nothing else: no generation, no device row, so no scheduler view reloads the host. The one exception
is a host that had been silent for longer than ``revive_after`` (or never reported): coming back is a
change that matters to scheduling (views had written it off), so it goes on the change feed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update

from epa.inventory.changes import mark_changed
from epa.inventory.db import Database
from epa.inventory.schema import Base, HostRow

_HOSTS = Base.metadata.tables["hosts"]
# A Core statement (not the ORM's bulk form): one executemany, pipelined by psycopg.
_TOUCH = update(_HOSTS).where(_HOSTS.c.id == bindparam("host_id")).values(last_report_at=bindparam("seen"))


@dataclass(frozen=True, slots=True)
class Beat:
    """One heartbeat: the host, the generation its agent holds, when it arrived."""

    host: str
    generation: int
    at: datetime


@dataclass(frozen=True, slots=True)
class BeatOutcome:
    """The server's side of a heartbeat: ``current`` is the host's generation (None: no such host)."""

    host: str
    current: int | None

    def matches(self, generation: int) -> bool:
        return self.current == generation


def record_beats(db: Database, beats: Sequence[Beat], revive_after: timedelta) -> list[BeatOutcome]:
    """Record ``beats`` in one transaction: one SELECT of the hosts, one executemany of their liveness;
    the answers, in order, say each host's current generation."""
    if not beats:
        return []
    latest: dict[str, datetime] = {}
    for beat in beats:
        latest[beat.host] = max(beat.at, latest.get(beat.host, beat.at))
    with db.transaction() as session:
        rows = session.execute(
            select(HostRow.id, HostRow.name, HostRow.generation, HostRow.last_report_at).where(
                HostRow.name.in_(sorted(latest))
            )
        ).all()
        found = {r.name: r for r in rows}
        params = []
        revived = []
        for name, at in latest.items():
            row = found.get(name)
            if row is None:
                continue
            if row.last_report_at is None or at - row.last_report_at > revive_after:
                revived.append(row.id)
            if row.last_report_at is None or at > row.last_report_at:
                params.append({"host_id": row.id, "seen": at})
        if params:
            # In id order: two batches touching the same hosts lock them in the same order.
            session.execute(_TOUCH, sorted(params, key=lambda p: int(p["host_id"])))
        mark_changed(session, revived)
    return [BeatOutcome(b.host, found[b.host].generation if b.host in found else None) for b in beats]
