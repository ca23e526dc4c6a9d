"""Waking API processes when the change feed moves, on PostgreSQL: every transaction that puts a host on the
feed also sends ``NOTIFY`` on :data:`CHANNEL` (delivered when it commits, once per transaction however many
hosts it marked), and a :class:`FeedListener` holds one connection that ``LISTEN``\\ s and counts what arrives.

A view that listens reads the feed as soon as something was notified, and need not read it while nothing was.
That holds only while the ``LISTEN`` is in place: a notification sent while the listener was not connected is
lost. So :meth:`FeedListener.wakeups` is None (unknown: read the feed) until the first ``LISTEN`` and after
the connection is lost, and each (re)connection counts as a wake-up (whatever was sent while the listener
was away is in the feed). SQLite has no notifications: nothing is sent and nobody listens."""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from epa.inventory.db import Database

log = logging.getLogger("epa.notify")
CHANNEL = "epa_changes"
# How long the listener blocks waiting for a notification before it looks whether it should stop.
POLL_SECONDS = 0.5
# How long it waits before connecting again after its connection failed.
RETRY_SECONDS = 2.0
_NOTIFY = text(f"NOTIFY {CHANNEL}")


def notify_changed(session: Session) -> None:
    """Tell the listening API processes that the feed moves when the caller's transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY)


class FeedListener:
    """One thread and one connection that ``LISTEN`` on :data:`CHANNEL` for ``db`` (PostgreSQL only)."""

    def __init__(self, db: Database) -> None:
        url = db.engine.url
        self._conninfo = psycopg.conninfo.make_conninfo(
            host=url.host or "",
            port=str(url.port or ""),
            dbname=url.database or "",
            user=url.username or "",
            password=url.password or "",
            **{k: str(v) for k, v in url.query.items()},
        )
        self._lock = threading.Lock()
        self._count = 0
        self._listening = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="epa-feed-listener", daemon=True)
        self._thread.start()

    def wakeups(self) -> int | None:
        """How many notifications (and reconnections) arrived so far; None while not listening."""
        with self._lock:
            return self._count if self._listening else None

    def received(self) -> int:
        """Notifications (and connections) so far, listening or not (a counter for metrics)."""
        with self._lock:
            return self._count

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10 * POLL_SECONDS)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as e:
                log.warning("listening for change-feed notifications failed (polling the feed meanwhile): %s", e)
            with self._lock:
                self._listening = False
            self._stop.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            with self._lock:
                self._listening = True
                self._count += 1  # what was sent before this LISTEN is read from the feed
            while not self._stop.is_set():
                arrived = sum(1 for _ in conn.notifies(timeout=POLL_SECONDS))
                if arrived:
                    with self._lock:
                        self._count += arrived
