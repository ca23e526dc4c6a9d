"""Dashboard tests run against the real app, served by uvicorn in a thread on a SQLite file seeded with two
simulated hosts, an alias, a flavor and a server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard.cloud import PORT, Cloud
from epa.inventory import Database
from epa.simulate.hosts import gpu_host, nfv_host
from epa.simulate.sysfs_tree import render_sysfs
from support.reports import report_body
from support.served import serve_in_thread

QAT_ALIAS = {
    "name": "qat",
    "vendor_id": "8086",
    "product_id": "37c9",
    "device_type": "type-VF",
    "numa_policy": "required",
}


@pytest.fixture
def cloud(sqlite_db: Database, tmp_path: Path) -> Iterator[Cloud]:
    with serve_in_thread(sqlite_db) as served:
        url, admin = served.url, served.admin
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=10) as http:
            c = Cloud(url, admin, http)
            for sim in (nfv_host("nfv-1"), gpu_host("gpu-1")):
                agent = c.call("POST", "/v1/hosts", json={"name": sim.name}, expect=201)["agent_token"]
                body = report_body(render_sysfs(sim, tmp_path / f"{sim.name}-sys"), 0)
                resp = http.put(
                    f"/v1/hosts/{sim.name}/inventory", json=body, headers={"Authorization": f"Bearer {agent}"}
                )
                assert resp.status_code == 200, resp.text
            c.call("POST", "/v1/aliases", json=QAT_ALIAS, expect=201)
            flavor = {"name": "vnf.small", "vcpus": 2, "memory_mb": 1024, "pci_passthrough:alias": "qat:2"}
            c.call("POST", "/v1/flavors", json=flavor, expect=201)
            first = c.call(
                "POST", "/v1/servers", json={"name": "vnf-1", "flavor": "vnf.small", "ports": [PORT]}, expect=201
            )
            assert first["host"] == "nfv-1", first
            yield c
