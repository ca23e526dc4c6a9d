"""Keeping one API process's scheduler view in step with the database at a cost that follows the
changes, not the fleet: the change feed names the hosts to reload, and liveness is followed apart.

Heartbeats do not reload a host, so the ``last_report`` a view holds ages. Before a host's view value
would pass the agent timeout, the host's real ``last_report_at`` is read back (one indexed query for all
the hosts crossing in this window): a live host gets its newer time, a silent one keeps its old one and
is refused from then on, exactly when it would have been before (``fit`` and the index compare the time
to now). The window is ``lookahead`` seconds ahead of the timeout, more than the longest gap between
refreshes of a view in use, so a live host never looks lapsed. A host that comes back after being
written off is put on the change feed by its heartbeat (inventory.liveness) and reloaded."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from epa.inventory import Database
from epa.inventory.changes import feed_cursor, last_seen, read_changes
from epa.inventory.snapshots import HostSnapshot, load_snapshots
from epa.scheduler.scheduler import Scheduler


@dataclass(slots=True)
class RefreshStats:
    """What refreshing has cost this view (metrics and the fleet benchmark read it)."""

    refreshes: int = 0
    feed_reads: int = 0
    reloaded_hosts: int = 0
    liveness_checked: int = 0
    seconds: float = 0.0


class ViewFollower:
    """Follows the change feed and the liveness window for one scheduler view."""

    def __init__(
        self,
        db: Database,
        scheduler: Scheduler,
        apply: Callable[[list[HostSnapshot]], None],
        alive_seconds: float,
        lookahead: float,
        clock: Callable[[], float],
    ) -> None:
        self.db = db
        self.scheduler = scheduler
        self.apply = apply
        self.alive_seconds = alive_seconds
        self.lookahead = lookahead
        self.clock = clock
        self.cursor: int | None = None
        self._edge = -math.inf
        self.stats = RefreshStats()

    def follow(self, read_feed: bool = True) -> None:
        """One refresh: reload what the feed names (unless ``read_feed`` is False: the caller knows nothing
        was put on it since the last read), then re-check the hosts entering the timeout window."""
        if self.cursor is None:
            # The cursor first: whatever commits while every host is loaded is read again next time.
            cursor = feed_cursor(self.db)
            snapshots = load_snapshots(self.db)
            self.apply(snapshots)
            self.stats.reloaded_hosts += len(snapshots)
            self.cursor = cursor
        elif read_feed:
            changes = read_changes(self.db, self.cursor)
            self.stats.feed_reads += 1
            if changes.names:
                snapshots = load_snapshots(self.db, changes.names)
                self.apply(snapshots)
                for gone in changes.names - {s.name for s in snapshots}:
                    self.scheduler.remove(gone)
                self.stats.reloaded_hosts += len(snapshots)
            self.cursor = changes.cursor
        edge = self.clock() - self.alive_seconds + self.lookahead
        crossing = self.scheduler.lapsing(self._edge, edge)
        if crossing:
            for name, at in last_seen(self.db, crossing).items():
                self.scheduler.seen(name, at.timestamp() if at is not None else None)
            self.stats.liveness_checked += len(crossing)
        self._edge = edge
        self.stats.refreshes += 1
