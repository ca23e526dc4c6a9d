"""A view woken by PostgreSQL's notifications (``listen``): it reads the change feed when another connection
changed something, and not while nothing was notified."""

from __future__ import annotations

from epa.domain.flavor import Flavor
from epa.domain.host import HostReport, NumaCell
from epa.inventory import Database, apply_report, create_host, set_host_enabled
from epa.inventory.flavors import create_flavor
from epa.service.scheduling import SchedulingService, ServiceConfig
from support.procs import wait_for

REPORT = HostReport((NumaCell(0, (0, 1, 2, 3), 8192, 0),), ())


def test_a_listening_view_reads_the_feed_only_when_notified(pg_db: Database) -> None:
    for name in ("a", "b"):
        create_host(pg_db, name)
        apply_report(pg_db, name, 0, REPORT)
    create_flavor(pg_db, Flavor.parse({"name": "tiny", "vcpus": 1, "memory_mb": 64}, {}))
    # Refreshing at every call (liveness is checked each time), reading the feed only when notified.
    svc = SchedulingService(pg_db, ServiceConfig(refresh_seconds=0.0), listen=True)
    try:
        assert svc.listener is not None
        wait_for("the listener's LISTEN", lambda: svc.listener.wakeups() if svc.listener else None)
        svc.refresh(force=True)  # the first load, after the LISTEN
        reads = svc.follower.stats.feed_reads
        for _ in range(5):
            svc.refresh()
        assert svc.follower.stats.feed_reads == reads  # nothing notified: nothing read
        assert svc.follower.stats.refreshes >= 6

        heard = svc.wakeups()
        set_host_enabled(pg_db, "a", False)  # another connection, as another process would
        wait_for("the notification", lambda: svc.wakeups() > heard or None)
        svc.refresh()
        assert svc.follower.stats.feed_reads == reads + 1
        _, request = svc.build("tiny", [])
        assert {r.placement.host for r in svc.scheduler.select(request, svc.clock(), limit=10).ranked} == {"b"}
    finally:
        svc.close()
