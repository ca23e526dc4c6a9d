"""Story: Prometheus scrapes ``/metrics`` (with the admin token; without one under ``--metrics-public``) and
sees the inventory (devices by host, type
and status; hosts; report ages) and what the scheduler did (creates, placements, no valid host, the
decision latency histogram); two apps in one process keep their own numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from epa.api.app import create_app
from epa.inventory import Database
from support.api_story import Api
from support.reports import report_body

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, token: str | None) -> Samples:
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def cloud(api: Api, nfv_sysfs: Path) -> Api:
    token = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, 0))
    api.call("POST", "/v1/hosts", json={"name": "idle-1"}, expect=201)
    api.call("PATCH", "/v1/hosts/idle-1", json={"enabled": False})
    alias = {"name": "t4", "vendor_id": "10de", "product_id": "1eb8", "numa_policy": "required"}
    api.call("POST", "/v1/aliases", json=alias, expect=201)
    flavor = {"name": "gpu", "vcpus": 1, "memory_mb": 64, "pci_passthrough:alias": "t4:1"}
    api.call("POST", "/v1/flavors", json=flavor, expect=201)
    return api


def test_scrape_shows_inventory_and_scheduling(cloud: Api) -> None:
    before = scrape(cloud.client, cloud.admin)
    assert value(before, "epa_server_creates_total") == 0
    assert value(before, "epa_scheduling_decision_seconds_count") == 0
    vfs = value(before, "epa_devices", host="nfv-1", dev_type="type-VF", status="available")
    assert vfs > 0
    gpus = value(before, "epa_devices", host="nfv-1", dev_type="type-PCI", status="available")

    first = cloud.call("POST", "/v1/servers", json={"name": "g-1", "flavor": "gpu"}, expect=201)
    assert first["status"] == "scheduled"
    second = cloud.call("POST", "/v1/servers", json={"name": "g-2", "flavor": "gpu"}, expect=201)
    assert second["status"] == "error"  # the one T4 is taken

    after = scrape(cloud.client, cloud.admin)
    assert value(after, "epa_server_creates_total") == 2
    assert value(after, "epa_servers_scheduled_total") == 1
    assert value(after, "epa_scheduling_no_valid_host_total") == 1
    assert value(after, "epa_claim_conflicts_total") == 0
    # One decision for the placed server, two for the refused one (it looks again on a fresh view).
    assert value(after, "epa_scheduling_decision_seconds_count") == 3
    assert value(after, "epa_scheduling_decision_seconds_bucket", le="+Inf") == 3
    assert value(after, "epa_scheduling_decision_seconds_sum") > 0
    assert value(after, "epa_devices", host="nfv-1", dev_type="type-PCI", status="claimed") == 1
    assert value(after, "epa_devices", host="nfv-1", dev_type="type-PCI", status="available") == gpus - 1
    assert not any(labels and dict(labels).get("host") == "idle-1" for name, labels in after if name == "epa_devices")
    assert value(after, "epa_hosts") == 2
    assert value(after, "epa_hosts_enabled") == 1
    age = value(after, "epa_agent_report_age_seconds", host="nfv-1")
    assert 0 <= age < 60
    assert ("epa_agent_report_age_seconds", frozenset({("host", "idle-1")})) not in after  # never reported

    # Counters only grow: a later scrape sees the same decisions once, not again.
    assert value(scrape(cloud.client, cloud.admin), "epa_scheduling_decision_seconds_count") == 3


def test_each_app_has_its_own_registry(cloud: Api, db: Database) -> None:
    cloud.call("POST", "/v1/servers", json={"name": "g-1", "flavor": "gpu"}, expect=201)
    with TestClient(create_app(db)) as other:
        samples = scrape(other, cloud.admin)
    assert value(samples, "epa_server_creates_total") == 0  # the other app scheduled nothing
    assert value(samples, "epa_devices", host="nfv-1", dev_type="type-PCI", status="claimed") == 1  # same database
    assert value(scrape(cloud.client, cloud.admin), "epa_server_creates_total") == 1


def test_metrics_need_the_admin_token_unless_served_public(cloud: Api, db: Database) -> None:
    assert cloud.client.get("/metrics").status_code == 401
    agent = cloud.call("POST", "/v1/hosts/nfv-1/token", expect=200)["agent_token"]
    assert cloud.client.get("/metrics", headers={"Authorization": f"Bearer {agent}"}).status_code == 403
    with TestClient(create_app(db, metrics_public=True)) as public:
        samples = scrape(public, None)
    assert value(samples, "epa_hosts") == 2


def test_decisions_past_the_old_trim_between_two_scrapes_count_once(cloud: Api) -> None:
    """More decisions between two scrapes than a bounded list kept (10,000) are each counted once."""
    service = cloud.client.app.state.scheduling  # type: ignore[attr-defined]
    assert value(scrape(cloud.client, cloud.admin), "epa_scheduling_decision_seconds_count") == 0
    for _ in range(12_000):
        service.counters.observe(0.001)
    assert value(scrape(cloud.client, cloud.admin), "epa_scheduling_decision_seconds_count") == 12_000
    service.counters.observe(0.001)
    samples = scrape(cloud.client, cloud.admin)
    assert value(samples, "epa_scheduling_decision_seconds_count") == 12_001
    assert value(samples, "epa_scheduling_decision_seconds_bucket", le="0.001") == 12_001
