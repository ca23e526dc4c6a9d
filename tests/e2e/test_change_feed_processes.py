"""Three `epa serve` processes on one PostgreSQL: what one process changes (disable a host, a heartbeat
that brings a host back), the others see within the refresh bound, through the change feed alone; and
heartbeats, sent to any process, keep a host's generation where it was."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from epa.service.scheduling import ServiceConfig
from support.procs import Processes, start_serve, wait_for

pytestmark = pytest.mark.slow
REFRESH_SECONDS = ServiceConfig().refresh_seconds
CELLS = [{"node": 0, "socket": 0, "cpus": list(range(64)), "memory_mb": 65536}]


@pytest.fixture
def api_urls(pg_url: str, tmp_path: Path) -> Iterator[list[str]]:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    procs = Processes()
    try:
        yield [
            start_serve(procs, tmp_path / f"serve-{i}.log", env, ["--database-url", pg_url], tmp_path) for i in range(3)
        ]
    finally:
        procs.stop_all()


def test_a_change_in_one_process_is_seen_by_the_others(api_urls: list[str], tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {(tmp_path / 'admin-token').read_text().strip()}"}
    clients = [httpx.Client(base_url=u, headers=admin, timeout=30) for u in api_urls]
    try:
        first = clients[0]
        tokens = {}
        for name in ("a", "b"):
            tokens[name] = {
                "Authorization": f"Bearer {first.post('/v1/hosts', json={'name': name}).json()['agent_token']}"
            }
            body = {"generation": 0, "numa_cells": CELLS, "devices": []}
            assert first.put(f"/v1/hosts/{name}/inventory", json=body, headers=tokens[name]).status_code == 200
        assert first.post("/v1/flavors", json={"name": "tiny", "vcpus": 1, "memory_mb": 64}).status_code == 201

        def create(client: httpx.Client, n: int) -> str:
            answer = client.post("/v1/servers", json={"name": f"s{n}", "flavor": "tiny"})
            assert answer.status_code == 201, answer.text
            server = answer.json()
            assert server["status"] == "scheduled", server
            return str(server["host"])

        # Every process has a view (each has loaded both hosts).
        for i, c in enumerate(clients):
            assert create(c, i) in {"a", "b"}

        # Heartbeats to any process: liveness only, the generation stays.
        for c in clients:
            beat = c.post("/v1/hosts/a/heartbeat", json={"generation": 1}, headers=tokens["a"])
            assert beat.status_code == 200 and beat.json() == {"host": "a", "generation": 1}, beat.text
        assert first.get("/v1/hosts/a").json()["generation"] == 1

        # Process 0 disables "a"; once the refresh bound has passed, the others never place on it.
        assert first.patch("/v1/hosts/a", json={"enabled": False}).status_code == 200
        time.sleep(REFRESH_SECONDS)
        for n in range(10, 22):
            assert create(clients[1 + n % 2], n) == "b"
        # They knew before trying: no claim of theirs was refused by the database (the backstop).
        for c in clients[1:]:
            metrics = c.get("/metrics").text
            assert "epa_claim_conflicts_total 0.0" in metrics, metrics
        # Back on: the others see that too.
        assert clients[2].patch("/v1/hosts/a", json={"enabled": True}).status_code == 200
        first.patch("/v1/hosts/b", json={"enabled": False})
        time.sleep(REFRESH_SECONDS)
        for n in range(30, 36):
            assert create(clients[n % 2], n) == "a"
    finally:
        for c in clients:
            c.close()


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_change_notified_by_one_process_wakes_the_others_long_before_their_refresh(
    pg_url: str, tmp_path: Path
) -> None:
    """Two processes whose views poll the feed only every 400 s: what one changes, the other knows at its next
    create because PostgreSQL notified it (LISTEN/NOTIFY), not because it polled."""
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    procs = Processes()
    slow = ["--database-url", pg_url, "--refresh-seconds", "400", "--agent-timeout", "3600"]
    try:
        urls = [start_serve(procs, tmp_path / f"serve-{i}.log", env, slow, tmp_path) for i in range(2)]
        admin = {"Authorization": f"Bearer {(tmp_path / 'admin-token').read_text().strip()}"}
        with (
            httpx.Client(base_url=urls[0], headers=admin, timeout=30) as first,
            httpx.Client(base_url=urls[1], headers=admin, timeout=30) as other,
        ):
            for name in ("a", "b"):
                token = first.post("/v1/hosts", json={"name": name}).json()["agent_token"]
                body = {"generation": 0, "numa_cells": CELLS, "devices": []}
                answer = first.put(
                    f"/v1/hosts/{name}/inventory", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                assert answer.status_code == 200, answer.text
            assert first.post("/v1/flavors", json={"name": "tiny", "vcpus": 1, "memory_mb": 64}).status_code == 201
            # The other process loads its view now; its next poll of the feed is 400 s away.
            assert other.post("/v1/servers", json={"name": "s0", "flavor": "tiny"}).json()["status"] == "scheduled"
            woken = metric(other, "epa_view_wakeups_total")
            assert woken >= 1  # its listener is connected

            assert first.patch("/v1/hosts/a", json={"enabled": False}).status_code == 200
            wait_for("the notification", lambda: metric(other, "epa_view_wakeups_total") > woken or None)
            for n in range(1, 9):
                server = other.post("/v1/servers", json={"name": f"s{n}", "flavor": "tiny"}).json()
                assert server["status"] == "scheduled" and server["host"] == "b", server
            # It knew before trying: no claim of its was refused by the database (the backstop).
            assert metric(other, "epa_claim_conflicts_total") == 0
    finally:
        procs.stop_all()
