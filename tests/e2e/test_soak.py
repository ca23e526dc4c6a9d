"""The soak of bench/soak.py, small: clients creating and deleting servers through two `epa serve` processes on
one PostgreSQL while an agent per simulated host builds and tears them down, past the point where the devices
run out. Every answer is clean, no device is owned twice, no server is lost, and once every server is deleted
every device is free again."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.soak import SoakConfig, run_soak

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
