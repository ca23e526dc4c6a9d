"""A scheduler view that follows the change feed: it reloads only the hosts that changed, keeps live
hosts whose heartbeats it never reloaded, and drops a host whose agent stopped exactly at the timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from epa.domain.flavor import Flavor
from epa.domain.host import HostReport, NumaCell
from epa.inventory import Database, apply_report, create_host, delete_host, set_host_enabled
from epa.inventory.flavors import create_flavor
from epa.inventory.liveness import Beat, record_beats
from epa.inventory.schema import HostRow
from epa.inventory.tokens import create_admin_token, hash_token
from epa.scheduler.scheduler import SchedulerConfig
from epa.service.scheduling import SchedulingService, ServiceConfig

ALIVE = 300.0
T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
REPORT = HostReport((NumaCell(0, (0, 1, 2, 3), 8192, 0),), ())


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now

    def at(self, seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)


def service(db: Database, clock: Clock) -> SchedulingService:
    config = ServiceConfig(scheduler=SchedulerConfig(alive_seconds=ALIVE), refresh_seconds=0.0)
    return SchedulingService(db, config, clock=clock)


def placeable(svc: SchedulingService) -> set[str]:
    """The hosts a one-vCPU server could go to, as this view sees them after a refresh."""
    svc.refresh(force=True)
    _, request = svc.build("tiny", [])
    return {r.placement.host for r in svc.scheduler.select(request, svc.clock(), limit=100).ranked}


def setup(db: Database, hosts: list[str]) -> None:
    create_flavor(db, Flavor(name="tiny", vcpus=1, memory_mb=64))
    for name in hosts:
        create_host(db, name)
        apply_report(db, name, 0, REPORT, now=T0)


def change_seqs(db: Database) -> dict[str, int]:
    with db.transaction(readonly=True) as session:
        return {str(name): int(seq) for name, seq in session.execute(select(HostRow.name, HostRow.change_seq))}


def test_a_host_whose_agent_stops_is_excluded_exactly_at_the_timeout(db: Database) -> None:
    clock = Clock()
    setup(db, ["beating", "stopped"])
    svc = service(db, clock)
    assert placeable(svc) == {"beating", "stopped"}
    seqs = change_seqs(db)
    # "beating" sends heartbeats every 60 s; "stopped" said nothing since T0.
    for t in range(60, 1000, 60):
        record_beats(
            db, [Beat("beating", 1, clock.at(t), hash_token(create_admin_token(db)))], timedelta(seconds=ALIVE / 2)
        )
        clock.now = clock.at(t).timestamp()
        expected = {"beating", "stopped"} if t <= ALIVE else {"beating"}
        assert placeable(svc) == expected, t
    clock.now = clock.at(ALIVE).timestamp()
    # The heartbeats never put a host on the change feed, and liveness was read back.
    assert change_seqs(db) == seqs
    assert svc.follower.stats.liveness_checked > 0
    if db.dialect == "sqlite":
        # Only the first load reloaded hosts. (On PostgreSQL the cursor is a transaction horizon of the whole
        # server: another database's open transaction holds it back and the setup's rows are read again.)
        assert svc.follower.stats.reloaded_hosts == 2


def test_exactly_at_the_timeout_and_just_after(db: Database) -> None:
    clock = Clock()
    setup(db, ["h"])
    svc = service(db, clock)
    clock.now = clock.at(ALIVE).timestamp()
    assert placeable(svc) == {"h"}
    clock.now = clock.at(ALIVE + 0.5).timestamp()
    assert placeable(svc) == set()


def test_a_host_back_after_the_timeout_is_placeable_again(db: Database) -> None:
    clock = Clock()
    setup(db, ["h"])
    svc = service(db, clock)
    clock.now = clock.at(ALIVE + 10).timestamp()
    assert placeable(svc) == set()
    record_beats(
        db, [Beat("h", 1, clock.at(ALIVE + 20), hash_token(create_admin_token(db)))], timedelta(seconds=ALIVE / 2)
    )
    clock.now = clock.at(ALIVE + 21).timestamp()
    assert placeable(svc) == {"h"}


def test_only_changed_hosts_are_reloaded(db: Database) -> None:
    clock = Clock()
    hosts = [f"h{i}" for i in range(30)]
    setup(db, hosts)
    svc = service(db, clock)
    assert placeable(svc) == set(hosts)
    first = svc.follower.stats.reloaded_hosts
    assert first == 30
    set_host_enabled(db, "h7", False)
    delete_host(db, "h8")
    assert placeable(svc) == set(hosts) - {"h7", "h8"}
    reloaded = svc.follower.stats.reloaded_hosts - first
    if db.dialect == "sqlite":
        assert reloaded == 1  # h7; h8 is gone
    else:
        # PostgreSQL's horizon may name hosts again while other databases' transactions hold it back.
        assert 1 <= reloaded <= 30
    set_host_enabled(db, "h7", True)
    assert placeable(svc) == set(hosts) - {"h8"}
