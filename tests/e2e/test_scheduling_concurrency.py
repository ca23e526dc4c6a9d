"""Several `epa serve` processes on one PostgreSQL, many clients creating servers at once until the
devices run out: no device is ever owned twice, no capacity is lost, every create is a clean answer."""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from epa.simulate.hosts import nfv_host
from epa.simulate.sysfs_tree import render_sysfs
from support.procs import Processes, start_serve
from support.reports import report_body

pytestmark = pytest.mark.slow
API_PROCESSES = 3
CLIENTS = 16
HOSTS = 3
# Per host: 8 VFs on physnet1 (the ports), 32 QAT VFs on the same NUMA node, 80 CPUs: the ports decide.
EXPECTED_SERVERS = 8 * HOSTS


@pytest.fixture
def api_urls(pg_url: str, tmp_path: Path) -> Iterator[list[str]]:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    procs = Processes()
    urls = []
    try:
        for i in range(API_PROCESSES):
            urls.append(start_serve(procs, tmp_path / f"serve-{i}.log", env, ["--database-url", pg_url], tmp_path))
        yield urls
    finally:
        procs.stop_all()


def test_concurrent_creates_never_double_allocate(api_urls: list[str], pg_url: str, tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {(tmp_path / 'admin-token').read_text().strip()}"}
    with httpx.Client(base_url=api_urls[0], headers=admin, timeout=30) as first:
        for i in range(HOSTS):
            name = f"nfv-{i}"
            token = first.post("/v1/hosts", json={"name": name}).json()["agent_token"]
            body = report_body(render_sysfs(nfv_host(name), tmp_path / name), 0)
            body["numa_cells"] = [
                {"node": n, "socket": n, "cpus": list(range(n * 40, n * 40 + 40)), "memory_mb": 192000} for n in (0, 1)
            ]
            answer = first.put(f"/v1/hosts/{name}/inventory", json=body, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
        assert (
            first.post(
                "/v1/aliases",
                json={"name": "qat", "vendor_id": "8086", "product_id": "37c9", "numa_policy": "required"},
            ).status_code
            == 201
        )
        assert (
            first.post(
                "/v1/flavors", json={"name": "vnf", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": "qat:2"}
            ).status_code
            == 201
        )

    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        rnd = random.Random(n)
        with httpx.Client(headers=admin, timeout=60) as http:
            misses = 0
            for attempt in range(40):
                url = rnd.choice(api_urls)
                resp = http.post(
                    f"{url}/v1/servers",
                    json={"name": f"c{n}-{attempt}", "flavor": "vnf", "ports": [{"physnet": "physnet1"}]},
                )
                with lock:
                    if resp.status_code != 201:
                        problems.append(f"{resp.status_code} {resp.text}")
                        return
                    server = resp.json()
                    outcomes[
                        server["status"] if server["status"] == "scheduled" else server["status_reason"].split(":")[0]
                    ] += 1
                    if server["status"] != "scheduled":
                        misses += 1
                if misses >= 3:
                    return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads)
    assert problems == []
    assert outcomes["scheduled"] == EXPECTED_SERVERS, outcomes
    assert set(outcomes) <= {"scheduled", "no valid host", "gave up after 6 rounds of conflicting claims"}

    engine = sqlalchemy.create_engine(pg_url)
    try:
        with engine.connect() as db:
            owners = db.execute(
                sqlalchemy.text(
                    "SELECT d.address, d.owner, d.status, h.name FROM devices d JOIN hosts h ON h.id = d.host_id "
                    "WHERE d.status IN ('claimed', 'allocated')"
                )
            ).all()
            claims = db.execute(
                sqlalchemy.text(
                    "SELECT c.device_id, c.server_id, s.status FROM claims c JOIN servers s ON s.id = c.server_id"
                )
            ).all()
            families = db.execute(
                sqlalchemy.text(
                    "SELECT vf.address FROM devices vf JOIN devices pf ON pf.host_id = vf.host_id "
                    "AND pf.address = vf.parent_addr WHERE vf.status IN ('claimed','allocated') "
                    "AND pf.status IN ('claimed','allocated')"
                )
            ).all()
            scheduled = db.execute(
                sqlalchemy.text("SELECT count(*) FROM servers WHERE status = 'scheduled'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert len(owners) == len(claims) == EXPECTED_SERVERS * 3  # 2 QAT VFs and 1 port VF each
    assert len({c.device_id for c in claims}) == len(claims)  # no device in two claims
    assert {c.status for c in claims} == {"scheduled"}
    assert families == []  # never a PF together with one of its own VFs
    assert scheduled == EXPECTED_SERVERS
    per_server = Counter(c.server_id for c in claims)
    assert set(per_server.values()) == {3}
