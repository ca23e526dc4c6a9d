"""The soak of bench/soak.py, small: clients creating and deleting servers through two `epa serve` processes on
one PostgreSQL while an agent per simulated host builds and tears them down, past the point where the devices
run out. Every answer is clean, no device is owned twice, no server is lost, and once every server is deleted
every device is free again."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy
from bench.inventory_ingest import build_report
from bench.soak import (
    KINDS,
    LIVE,
    SPECS,
    Created,
    Ledger,
    SoakConfig,
    device_checks,
    run_soak,
    server_checks,
    soak_host,
)

from epa.inventory import Database, apply_report, create_host

pytestmark = pytest.mark.slow

CONFIG = SoakConfig(serve_processes=2, hosts=2, clients=24, operations=800, quiesce_s=120.0)


@pytest.mark.timeout(420)
def test_creates_and_deletes_past_exhaustion_lose_nothing_and_own_nothing_twice(pg_url: str, tmp_path: Path) -> None:
    result = run_soak(pg_url, tmp_path, CONFIG)

    assert dict(result.ledger.failures) == {}, result.ledger.failure_samples
    failed = {c.name: c.problems[:5] for c in result.checks if not c.ok}
    assert failed == {}
    assert result.operations == CONFIG.operations
    # The pools ran dry: some creates found no host, while others were placed.
    assert result.outcome("create", "no valid host") > 0
    assert result.outcome("create", "scheduled") > 0
    # Deletes went through the agents, which gave the devices back: every placed server was released by its
    # host's agent (the drain deleted those the clients kept), and every device is available again.
    assert result.outcome("delete", "deleting") > 0
    assert result.released_by_agents == result.outcome("create", "scheduled")


def test_the_soak_checks_see_a_corrupted_database(pg_db: Database, tmp_path: Path) -> None:
    create_host(pg_db, "nfv-0")
    apply_report(pg_db, "nfv-0", 0, build_report(soak_host("nfv-0"), tmp_path / "sys", SPECS))
    with pg_db.engine.connect() as db:
        assert [c.name for c in device_checks(db, LIVE) if not c.ok] == []
        assert [c.name for c in server_checks(db, Ledger()) if not c.ok] == []

    # A PF and one of its VFs marked in use by a server that has no claims (and does not exist).
    with pg_db.engine.begin() as db:
        db.execute(
            sqlalchemy.text(
                "UPDATE devices SET status = 'claimed', owner = 'ghost' "
                "WHERE address IN ('0000:18:00.0', '0000:18:02.0')"
            )
        )
    ledger = Ledger()
    ledger.created["lost"] = Created(KINDS[0], client=0, status="scheduled")
    with pg_db.engine.connect() as db:
        failed = {c.name for c in device_checks(db, LIVE) if not c.ok}
        lost = {c.name for c in server_checks(db, ledger) if not c.ok}
    assert failed == {
        "every device in use has its claim",
        "never a PF and its own VF both in use",
        "unavailable exactly where the PF/VF rule says",  # the PF's other VFs are still available
    }
    assert lost == {"no lost server"}
