"""Server actions go through the service, which keeps the scheduler's view current itself: a release or a
failure reported by the agent frees the CPUs in the view at once (no refresh, no route involved), and an
agent acts on the servers of its own host only."""

from __future__ import annotations

import pytest

from epa.domain.flavor import Flavor
from epa.domain.host import HostReport, NumaCell
from epa.domain.server import HostName, ServerStatus
from epa.errors import Forbidden
from epa.inventory import Database, apply_report, create_host
from epa.inventory.flavors import create_flavor
from epa.inventory.records import Principal
from epa.service.scheduling import SchedulingService, ServiceConfig
from epa.service.servers import AgentReport, Boot, ServerActions

REPORT = HostReport((NumaCell(0, (0, 1, 2, 3), 8192, 0),), ())


def used_cpus(svc: SchedulingService, host: str) -> int:
    return sum(c.used_cpus for c in svc.scheduler.hosts[host].cells.values())


@pytest.fixture
def actions(db: Database) -> ServerActions:
    create_flavor(db, Flavor(name="two", vcpus=2, memory_mb=64))
    for host in ("h1", "h2"):
        create_host(db, host)
        apply_report(db, host, 0, REPORT)
    # A view that would never refresh by itself: whatever it shows after an action, the action did.
    return ServerActions(SchedulingService(db, ServiceConfig(refresh_seconds=1e9), clock=lambda: 0.0))


def test_a_failure_the_agent_reports_frees_the_cpus_in_the_view_at_once(actions: ServerActions) -> None:
    record, replayed = actions.create("vm", "two", [], Boot())
    assert not replayed and record.status is ServerStatus.SCHEDULED and record.host is not None
    view = actions.scheduling
    assert used_cpus(view, record.host) == 2
    failed = actions.report(Principal("agent", record.host), record.id, AgentReport(ServerStatus.ERROR, "no VF"))
    assert failed.status is ServerStatus.ERROR and failed.status_reason == "no VF"
    assert used_cpus(view, record.host) == 0


def test_a_release_by_the_agent_frees_the_cpus_and_another_hosts_agent_may_not(actions: ServerActions) -> None:
    record, _ = actions.create("vm", "two", [], Boot())
    assert record.host is not None
    other = HostName("h2" if record.host == "h1" else "h1")
    deleting = actions.delete(record.id)
    assert deleting.status is ServerStatus.DELETING
    with pytest.raises(Forbidden, match=f"agent token of host '{other}' may not act on host '{record.host}'"):
        actions.released(Principal("agent", other), record.id)
    with pytest.raises(Forbidden):
        actions.on_host(Principal("agent", other), HostName(record.host))
    assert used_cpus(actions.scheduling, record.host) == 2
    released = actions.released(Principal("agent", record.host), record.id)
    assert released.status is ServerStatus.DELETED
    assert used_cpus(actions.scheduling, record.host) == 0
