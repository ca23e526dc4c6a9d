"""The change feed: every change that matters to scheduling marks its host with a new change number, and
an API process asks only for the hosts marked since it last looked - O(changes), not O(hosts).

Marking (``mark_changed``) happens in the writer's transaction, under the host row it already holds.
Reading (``read_changes``) must never miss a change, and sequence numbers alone cannot promise that on
PostgreSQL: ``nextval`` is taken before commit, so a transaction holding 41 can commit after one holding
42 was read. The cursor is therefore a transaction horizon, not a number: each change also records the
id of the transaction that made it (``change_xid``), and a read takes ``xmin`` of its own snapshot - every
transaction with a smaller id had ended before that snapshot, so its effects were visible in it - and
next time reads every host whose change_xid is at least that ``xmin``. A change committed after one read
belongs to a transaction that was in progress or not yet started at that read, whose id is therefore
at least the read's ``xmin``: the next read has it. Rows changed by long transactions are read twice,
which is harmless (a reload is idempotent). On SQLite writers take turns (one write lock), so numbers
are taken in commit order and the cursor is simply the highest number seen. On PostgreSQL a change also
notifies the API processes that listen (``inventory.notify``), so that they read the feed at once."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, select, text, update
from sqlalchemy.orm import Session

from epa.inventory.db import Database
from epa.inventory.notify import notify_changed
from epa.inventory.schema import ChangeCounterRow, HostRow, HostTombstoneRow, utcnow

_PG_XID: Any = literal_column("pg_current_xact_id()::text::bigint")
_PG_XMIN = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


@dataclass(frozen=True, slots=True)
class Changes:
    """Hosts changed (or deleted) since a cursor, and the cursor to ask from next time. ``names`` may
    name a host twice over reads (a re-read is idempotent) and may name hosts that no longer exist."""

    names: frozenset[str]
    cursor: int


def _next_number(session: Session) -> int:
    """SQLite: the next change number, from the one-row counter (under the database's write lock)."""
    return int(
        session.execute(
            update(ChangeCounterRow).values(value=ChangeCounterRow.value + 1).returning(ChangeCounterRow.value)
        ).scalar_one()
    )


def mark_changed(session: Session, host_ids: Collection[int]) -> None:
    """Put ``host_ids`` on the change feed, in the caller's (writing) transaction."""
    if not host_ids:
        return
    ids = sorted(set(host_ids))
    query = update(HostRow).where(HostRow.id.in_(ids)).execution_options(synchronize_session=False)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(query.values(change_seq=func.nextval("host_change_seq"), change_xid=_PG_XID))
        notify_changed(session)
    else:
        session.execute(query.values(change_seq=_next_number(session)))


def record_deleted(session: Session, name: str) -> None:
    """Leave a tombstone for host ``name``, deleted in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        values: dict[str, Any] = {"change_seq": func.nextval("host_change_seq"), "change_xid": _PG_XID}
        notify_changed(session)
    else:
        values = {"change_seq": _next_number(session), "change_xid": 0}
    session.execute(insert(HostTombstoneRow).values(name=name, deleted_at=utcnow(), **values))


def feed_cursor(db: Database) -> int:
    """Where a view that is about to load every host starts following the feed."""
    with db.transaction(readonly=True) as session:
        return _cursor(session, db.dialect)


def _cursor(session: Session, dialect: str) -> int:
    if dialect == "postgresql":
        return int(session.execute(_PG_XMIN).scalar_one())
    return int(session.execute(select(ChangeCounterRow.value)).scalar_one())


def read_changes(db: Database, cursor: int) -> Changes:
    """The hosts changed or deleted since ``cursor`` (from ``feed_cursor`` or a previous read)."""
    with db.transaction(readonly=True) as session:
        if db.dialect == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            # First statement: it takes the snapshot that the reads below see.
            horizon = _cursor(session, db.dialect)
            hosts = select(HostRow.name).where(HostRow.change_xid >= bindparam("c"))
            gone = select(HostTombstoneRow.name).where(HostTombstoneRow.change_xid >= bindparam("c"))
            names = {*session.execute(hosts, {"c": cursor}).scalars(), *session.execute(gone, {"c": cursor}).scalars()}
            return Changes(frozenset(names), horizon)
        seqs = select(HostRow.name, HostRow.change_seq).where(HostRow.change_seq > cursor)
        dead = select(HostTombstoneRow.name, HostTombstoneRow.change_seq).where(HostTombstoneRow.change_seq > cursor)
        rows = [*session.execute(seqs), *session.execute(dead)]
        return Changes(frozenset(n for n, _ in rows), max((s for _, s in rows), default=cursor))


def last_seen(db: Database, names: Collection[str]) -> dict[str, datetime | None]:
    """When each named host's agent was last heard from (a report or a heartbeat); absent names are gone."""
    out: dict[str, datetime | None] = {}
    ordered = sorted(set(names))
    with db.transaction(readonly=True) as session:
        for start in range(0, len(ordered), 900):
            chunk = ordered[start : start + 900]
            query = select(HostRow.name, HostRow.last_report_at).where(HostRow.name.in_(chunk))
            out.update(dict(session.execute(query).all()))
    return out
