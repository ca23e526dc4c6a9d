"""The change feed: every change that matters to scheduling names its host, and a reader following the
feed never misses one - also when a transaction holding a lower sequence number commits after one
holding a higher number was read (PostgreSQL takes ``nextval`` before commit)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from epa.domain.address import PciAddress
from epa.domain.flavor import Flavor
from epa.domain.host import HostReport
from epa.domain.port import Port
from epa.domain.server import ClaimedDevice
from epa.inventory import Database, apply_report, create_host, delete_host, set_host_enabled
from epa.inventory.changes import feed_cursor, mark_changed, read_changes
from epa.inventory.claims import ClaimPlan, NewServer, claim, release
from epa.inventory.liveness import Beat, record_beats
from epa.inventory.schema import HostRow
from epa.inventory.tokens import create_admin_token, hash_token

VF = "0000:18:02.0"


def seqs(db: Database) -> dict[str, int]:
    with db.transaction(readonly=True) as session:
        return dict(session.execute(select(HostRow.name, HostRow.change_seq)).all())


def test_each_scheduling_change_advances_the_hosts_number(db: Database, nfv_report: HostReport) -> None:
    create_host(db, "nfv-1")
    create_host(db, "idle")
    seen = seqs(db)
    assert seen["nfv-1"] != seen["idle"]

    def moved(action: str) -> None:
        nonlocal seen
        now = seqs(db)
        assert now["nfv-1"] > seen["nfv-1"], action
        assert now["idle"] == seen["idle"], action
        assert max(now.values()) == now["nfv-1"], action
        seen = now

    apply_report(db, "nfv-1", 0, nfv_report)
    moved("report")
    flavor = Flavor(name="small", vcpus=2, memory_mb=1024)
    plan = ClaimPlan("nfv-1", (0,), {0: 2}, {0: 1024}, (ClaimedDevice(PciAddress.parse(VF), 0, "port0", 0),))
    server = claim(db, NewServer("vm", flavor, (Port("physnet1"),)), plan)
    moved("claim")
    release(db, server.id)
    moved("release")
    set_host_enabled(db, "nfv-1", False)
    moved("disable")
    set_host_enabled(db, "nfv-1", False)
    assert seqs(db) == seen, "disabling a disabled host changes nothing"
    set_host_enabled(db, "nfv-1", True)
    moved("enable")
    record_beats(
        db,
        [Beat("nfv-1", 1, datetime.now(UTC), hash_token(create_admin_token(db)))],
        revive_after=timedelta(seconds=150),
    )
    assert seqs(db) == seen, "a heartbeat is liveness only"


def test_a_reader_sees_creates_changes_and_deletes(db: Database, nfv_report: HostReport) -> None:
    create_host(db, "old")
    cursor = feed_cursor(db)
    create_host(db, "nfv-1")
    changes = read_changes(db, cursor)
    assert "nfv-1" in changes.names
    apply_report(db, "nfv-1", 0, nfv_report)
    changes = read_changes(db, changes.cursor)
    assert "nfv-1" in changes.names
    delete_host(db, "nfv-1")
    changes = read_changes(db, changes.cursor)
    assert "nfv-1" in changes.names  # from its tombstone


def _bump(session: Session, db: Database, name: str) -> None:
    hid = session.execute(
        update(HostRow)
        .where(HostRow.name == name)
        .values(claim_generation=HostRow.claim_generation + 1)
        .returning(HostRow.id)
    ).scalar_one()
    mark_changed(session, [hid])


def _counts(db: Database) -> dict[str, int]:
    with db.transaction(readonly=True) as session:
        return dict(session.execute(select(HostRow.name, HostRow.claim_generation)).all())


def test_a_lower_number_committed_late_is_not_missed(pg_db: Database) -> None:
    db = pg_db
    create_host(db, "slow")
    create_host(db, "fast")
    cursor = feed_cursor(db)
    with db.transaction() as slow:
        _bump(slow, db, "slow")  # takes its number first...
        with db.transaction() as fast:
            _bump(fast, db, "fast")
        # ...and commits after "fast", whose higher number a reader sees now.
        first = read_changes(db, cursor)
        assert "fast" in first.names
    s = seqs(db)
    assert s["slow"] < s["fast"], "a reader resuming after the highest number seen would miss 'slow'"
    second = read_changes(db, first.cursor)
    assert "slow" in second.names
    with db.transaction(readonly=True) as session:
        xid = session.execute(select(HostRow.change_xid).where(HostRow.name == "slow")).scalar_one()
    assert xid >= first.cursor  # named for its late commit, not for its creation


def test_concurrent_writers_never_leave_a_follower_behind(pg_db: Database) -> None:
    """Writers bump counters on random hosts, holding their number a random while before commit; a
    follower reloads what the feed names. When the writers stop, the follower's copy equals the database."""
    db = pg_db
    hosts = [f"h{i}" for i in range(20)]
    for name in hosts:
        create_host(db, name)
    cursor = feed_cursor(db)
    view = _counts(db)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        rnd = random.Random(n)
        try:
            while not stop.is_set():
                with db.transaction() as session:
                    _bump(session, db, rnd.choice(hosts))
                    time.sleep(rnd.uniform(0, 0.01))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    reads = 0
    deadline = time.monotonic() + 3.0
    try:
        while time.monotonic() < deadline:
            changes = read_changes(db, cursor)
            if changes.names:
                with db.transaction(readonly=True) as session:
                    rows = session.execute(
                        select(HostRow.name, HostRow.claim_generation).where(HostRow.name.in_(changes.names))
                    )
                    view.update(dict(rows.all()))
            cursor = changes.cursor
            reads += 1
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    changes = read_changes(db, cursor)
    with db.transaction(readonly=True) as session:
        rows = session.execute(select(HostRow.name, HostRow.claim_generation).where(HostRow.name.in_(changes.names)))
        view.update(dict(rows.all()))
    truth = _counts(db)
    assert sum(truth.values()) > 100 and reads > 10  # the writers and the follower did run
    assert view == truth


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    db = Database.connect(pg_url)
    db.migrate()
    yield db
    db.dispose()
