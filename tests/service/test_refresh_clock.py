"""The service's view is refreshed on its own clock: at most once per ``refresh_seconds`` as that clock
tells it, so a test (or a simulated fleet) that moves the clock sees the view follow."""

from __future__ import annotations

from epa.inventory import Database
from epa.service.scheduling import SchedulingService, ServiceConfig


def test_a_refresh_is_due_when_the_services_clock_says_so(db: Database) -> None:
    now = [1_000_000.0]
    svc = SchedulingService(db, ServiceConfig(refresh_seconds=3600.0), clock=lambda: now[0])
    svc.refresh()
    first = svc.follower.stats.refreshes
    assert first == 1
    svc.refresh()
    assert svc.follower.stats.refreshes == first  # the same instant on the service's clock: not due
    now[0] += 3601.0
    svc.refresh()
    assert svc.follower.stats.refreshes == first + 1
