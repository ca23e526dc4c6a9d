"""Liveness apart from inventory: heartbeats of many hosts recorded in one short transaction, their
tokens checked in it too (one indexed query for the batch instead of one per request).

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
from epa.inventory.records import Principal
from epa.inventory.schema import Base
from epa.inventory.tokens import principals

_HOSTS = Base.metadata.tables["hosts"]
# A Core statement (not the ORM's bulk form): one executemany, pipelined by psycopg.
_TOUCH = update(_HOSTS).where(_HOSTS.c.id == bindparam("host_id")).values(last_report_at=bindparam("seen"))


@dataclass(frozen=True, slots=True)
class Beat:
    """One heartbeat: the host, the generation its agent holds, when it arrived, and the digest of the
    token it came with (``tokens.token_digest``)."""

    host: str
    generation: int
    at: datetime
    token: str


@dataclass(frozen=True, slots=True)
class BeatOutcome:
    """The server's side of a heartbeat: ``caller`` is who the token belongs to (None: nobody),
    ``current`` the host's generation (None: no such host). Liveness was recorded only if the caller
    may act on the host (the admin, or the host's own agent)."""

    host: str
    caller: Principal | None
    current: int | None

    @property
    def allowed(self) -> bool:
        return self.caller is not None and (self.caller.is_admin or self.caller.host == self.host)

    def matches(self, generation: int) -> bool:
        return self.current == generation


def record_beats(db: Database, beats: Sequence[Beat], revive_after: timedelta) -> list[BeatOutcome]:
    """Record ``beats`` in one transaction: one SELECT of the tokens, one of the hosts, one executemany of
    their liveness; the answers, in order, say who called and each host's current generation."""
    if not beats:
        return []
    with db.transaction() as session:
        # Core statements on the session's connection: the ORM's per-statement work cost more than the rows.
        connection = session.connection()
        callers = principals(connection, [b.token for b in beats])
        outcomes = [BeatOutcome(b.host, callers.get(b.token), None) for b in beats]
        names = sorted({o.host for o in outcomes if o.allowed})
        hosts = _HOSTS.c
        rows = connection.execute(
            select(hosts.id, hosts.name, hosts.generation, hosts.last_report_at).where(hosts.name.in_(names))
        ).all()
        found = {r.name: r for r in rows}
        # Only a heartbeat at the host's generation is recorded: a refused one (409) writes nothing, and the
        # agent's full report, which follows at once, records the liveness.
        current: dict[str, datetime] = {}
        for beat, outcome in zip(beats, outcomes, strict=True):
            row = found.get(beat.host)
            if outcome.allowed and row is not None and row.generation == beat.generation:
                current[beat.host] = max(beat.at, current.get(beat.host, beat.at))
        params = []
        revived = []
        for name, at in current.items():
            row = found[name]
            if row.last_report_at is None or at - row.last_report_at > revive_after:
                revived.append(row.id)
            if row.last_report_at is None or at > row.last_report_at:
                params.append({"host_id": row.id, "seen": at})
        if params:
            # In id order: two batches touching the same hosts lock them in the same order.
            connection.execute(_TOUCH, sorted(params, key=lambda p: int(p["host_id"])))
        mark_changed(session, revived)
    return [
        BeatOutcome(o.host, o.caller, found[o.host].generation if o.allowed and o.host in found else None)
        for o in outcomes
    ]
