"""Story: a client sends a create, loses the answer, and sends it again with the same Idempotency-Key:
it gets the server its first request made, never a second one - also when the two race in two API
processes on one PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from epa.api.app import create_app
from epa.inventory import Database
from epa.inventory.servers import list_servers
from epa.inventory.tokens import ensure_admin_token
from epa.service.scheduling import SchedulingService
from support.api_story import Api
from support.reports import report_body

KEY = "3f0c9a8e-2b1d-4c5e-9f7a-6b8c0d1e2f3a"


@pytest.fixture
def cloud(api: Api, nfv_sysfs: Path) -> Api:
    return seed(api, nfv_sysfs)


def seed(api: Api, nfv_sysfs: Path) -> Api:
    token = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, 0))
    api.call("POST", "/v1/aliases", expect=201, json={"name": "qat", "vendor_id": "8086", "product_id": "37c9"})
    api.call("POST", "/v1/aliases", expect=201, json={"name": "t4", "vendor_id": "10de", "product_id": "1eb8"})
    flavor = {"name": "vnf", "vcpus": 2, "memory_mb": 1024, "pci_passthrough:alias": "qat:1"}
    api.call("POST", "/v1/flavors", expect=201, json=flavor)
    gpu = {"name": "gpu2", "vcpus": 1, "memory_mb": 512, "pci_passthrough:alias": "t4:2"}
    api.call("POST", "/v1/flavors", expect=201, json=gpu)
    return api


def create(api: Api, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.admin}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.client.post("/v1/servers", json=body, headers=headers)


def held(api: Api) -> list[str]:
    devices = api.call("GET", "/v1/devices?host=nfv-1&limit=10000")["devices"]
    return sorted(d["address"] for d in devices if d["status"] in ("claimed", "allocated"))


def test_the_same_key_gets_the_same_server_back(cloud: Api) -> None:
    first = create(cloud, {"name": "vnf-1", "flavor": "vnf"}, KEY)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    claimed = held(cloud)
    assert len(claimed) == 1
    again = create(cloud, {"name": "vnf-1", "flavor": "vnf"}, KEY)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["devices"] == first.json()["devices"]
    assert held(cloud) == claimed
    assert [s["name"] for s in cloud.call("GET", "/v1/servers")["servers"]] == ["vnf-1"]
    # Without a key, or with another, a create is a new server.
    other = create(cloud, {"name": "vnf-1", "flavor": "vnf"}, None)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert len(held(cloud)) == 2


def test_a_key_reused_for_another_request_is_a_conflict_that_changes_nothing(cloud: Api) -> None:
    assert create(cloud, {"name": "vnf-1", "flavor": "vnf"}, KEY).status_code == 201
    for body in ({"name": "vnf-2", "flavor": "vnf"}, {"name": "vnf-1", "flavor": "gpu2"}):
        refused = create(cloud, body, KEY)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "conflict"
        assert f"Idempotency-Key {KEY!r} was used for server 'vnf-1'" in refused.json()["error"]["message"]
    assert len(cloud.call("GET", "/v1/servers")["servers"]) == 1


def test_a_key_reused_with_other_ports_is_a_conflict(cloud: Api) -> None:
    direct = [{"physnet": "physnet1", "vnic_type": "direct"}]
    first = create(cloud, {"name": "vnf-1", "flavor": "vnf", "ports": direct}, KEY)
    assert first.status_code == 201, first.text
    claimed = held(cloud)
    trusted = [{"physnet": "physnet2", "vnic_type": "direct", "trusted": True}]
    for ports in ([], trusted, direct + direct):
        refused = create(cloud, {"name": "vnf-1", "flavor": "vnf", "ports": ports}, KEY)
        assert refused.status_code == 409, refused.text
        assert "Idempotent-Replayed" not in refused.headers
        assert refused.json()["error"]["code"] == "conflict"
        assert "ports" in refused.json()["error"]["message"]
    # The same ports, spelt with the defaults left out, are the same request.
    again = create(cloud, {"name": "vnf-1", "flavor": "vnf", "ports": [{"physnet": "physnet1"}]}, KEY)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert held(cloud) == claimed


def test_a_create_that_found_no_host_is_replayed_as_it_was(cloud: Api) -> None:
    first = create(cloud, {"name": "big", "flavor": "gpu2"}, KEY)
    assert first.status_code == 201 and first.json()["status"] == "error"
    again = create(cloud, {"name": "big", "flavor": "gpu2"}, KEY)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()


@pytest.mark.parametrize("key", ["", "has space", "x" * 65, "naïve"])
def test_a_malformed_key_is_refused_by_name(cloud: Api, key: str) -> None:
    try:
        refused = create(cloud, {"name": "vnf-1", "flavor": "vnf"}, key)
    except UnicodeEncodeError:  # httpx will not even send a non-ASCII header
        return
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "invalid_input"
    assert "Idempotency-Key" in refused.json()["error"]["message"]
    assert cloud.call("GET", "/v1/servers")["servers"] == []


def test_retries_racing_in_two_processes_make_one_server(pg_db: Database, nfv_sysfs: Path) -> None:
    """Two scheduling services (two API processes) on one PostgreSQL, eight threads each sending the
    same create with the same key at once: one server, one set of devices, everyone gets its id."""
    token = ensure_admin_token(pg_db)
    assert token is not None
    with TestClient(create_app(pg_db), raise_server_exceptions=False) as client:
        seed(Api(client, token), nfv_sysfs)
    services = [SchedulingService(pg_db), SchedulingService(pg_db)]
    barrier = threading.Barrier(16)
    answers: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def send(service: SchedulingService) -> None:
        barrier.wait()
        try:
            record, replayed = service.create_once(KEY, "vnf-1", "vnf", [])
            answers.append((record.id, replayed))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=send, args=(services[i % 2],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len({server_id for server_id, _ in answers}) == 1 and len(answers) == 16
    assert sorted(replayed for _, replayed in answers) == [False] + [True] * 15
    made = list_servers(pg_db)
    assert [s.id for s in made] == [answers[0][0]] and len(made[0].devices) == 1
