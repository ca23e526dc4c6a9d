"""`epa server`: dry run, create, show, stop/start, delete with --wait and --force, one-line failures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from epa.cli import server as server_cli
from epa.cli.main import main
from epa.client import ApiClient
from epa.errors import ServiceUnavailable
from support.reports import report_body
from support.served import Served


def epa(capsys: pytest.CaptureFixture[str], served: Served, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--server", served.url, "--token", served.admin])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], served: Served, *args: str) -> Any:
    code, out, err = epa(capsys, served, *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def cloud(capsys: pytest.CaptureFixture[str], served: Served, nfv_sysfs: Path) -> Iterator[ApiClient]:
    with ApiClient(served.url, served.admin) as api:
        token = api.create_host("nfv-1")["agent_token"]
        with ApiClient(served.url, token) as agent:
            agent._object("PUT", "/v1/hosts/nfv-1/inventory", report_body(nfv_sysfs, 0))
        api.create_alias({"name": "qat", "vendor_id": "8086", "product_id": "37c9", "numa_policy": "required"})
        api.create_flavor({"name": "vnf", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": "qat:2"})
        yield api


def test_dry_run_then_create_show_stop_start(
    capsys: pytest.CaptureFixture[str], served: Served, cloud: ApiClient
) -> None:
    code, out, err = epa(
        capsys,
        served,
        "server",
        "create",
        "x",
        "--flavor",
        "vnf",
        "--dry-run",
        "--port",
        "physnet=physnet1,vnic_type=direct",
    )
    assert code == 0, err
    assert out.splitlines()[0] == "candidates (best first):"
    assert "nfv-1" in out and "alias qat:" in out and "port 0 (direct on physnet1):" in out
    assert cloud.list_servers() == []  # a dry run claims nothing

    created = as_json(
        capsys,
        served,
        "server",
        "create",
        "vnf-1",
        "--flavor",
        "vnf",
        "--port",
        "physnet=physnet1,vnic_type=direct,vlan=42",
    )
    assert (created["status"], created["host"]) == ("scheduled", "nfv-1")
    assert [d["request_label"] for d in created["devices"]] == ["alias qat", "alias qat", "port 0 (direct on physnet1)"]
    code, out, _ = epa(capsys, served, "server", "show", created["id"])
    assert code == 0 and "host NUMA nodes:" in out and "alias qat" in out
    code, out, _ = epa(capsys, served, "server", "list")
    assert out.splitlines()[1].split()[:4] == [created["id"][:8], "vnf-1", "scheduled", "nfv-1"]

    # The agent's side, done by hand: it built the server.
    cloud._object("POST", f"/v1/servers/{created['id']}/state", {"status": "building"})
    cloud._object("POST", f"/v1/servers/{created['id']}/state", {"status": "active", "domain_state": "running"})
    assert epa(capsys, served, "server", "stop", created["id"])[1].strip().endswith(": stopped")
    assert epa(capsys, served, "server", "start", created["id"])[1].strip().endswith(": active")


def test_create_wait_follows_the_agent(capsys: pytest.CaptureFixture[str], served: Served, cloud: ApiClient) -> None:
    def agent_builds() -> None:
        with ApiClient(served.url, served.admin) as api:
            for _ in range(200):
                servers = api.list_servers(status="scheduled")
                if servers:
                    sid = servers[0]["id"]
                    api._object("POST", f"/v1/servers/{sid}/state", {"status": "building"})
                    api._object("POST", f"/v1/servers/{sid}/state", {"status": "active"})
                    return
                threading.Event().wait(0.05)

    helper = threading.Thread(target=agent_builds)
    helper.start()
    code, out, err = epa(capsys, served, "server", "create", "vnf-1", "--flavor", "vnf", "--wait", "--timeout", "20")
    helper.join(timeout=20)
    assert code == 0, err
    assert ": active" in err  # progress lines on stderr
    assert "active" in out.splitlines()[1]


def test_failures_are_one_line(capsys: pytest.CaptureFixture[str], served: Served, cloud: ApiClient) -> None:
    code, _out, err = epa(capsys, served, "server", "create", "big", "--flavor", "vnf", "--port", "physnet=nowhere")
    assert code == 1
    assert err.startswith("epa: error: server big (") and "no valid host: 1 host: " in err
    assert "Traceback" not in err
    code, _, err = epa(capsys, served, "server", "create", "x", "--flavor", "vnf", "--port", "physnet=p,vnic_type=tap")
    assert code == 2
    assert "vnic_type ('tap')" in err
    code, _, err = epa(capsys, served, "server", "create", "x", "--flavor", "nope")
    assert (code, err.strip()) == (1, "epa: error: flavor 'nope' does not exist")


def test_delete_force_and_wait(capsys: pytest.CaptureFixture[str], served: Served, cloud: ApiClient) -> None:
    created = as_json(capsys, served, "server", "create", "vnf-1", "--flavor", "vnf")
    code, out, _ = epa(capsys, served, "server", "delete", created["id"])
    assert (code, out.strip()) == (0, f"server {created['id']}: deleting")
    code, out, _ = epa(capsys, served, "server", "delete", created["id"], "--force")
    assert (code, out.strip()) == (0, f"server {created['id']}: deleted")
    assert cloud.list_devices(host="nfv-1", status="claimed") == []


class LoseFirstAnswers(httpx.BaseTransport):
    """The network between client and server: requests reach the real server, but the first ``lose``
    answers to a POST are lost on the way back (the connection drops after the server acted)."""

    def __init__(self, lose: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = lose
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST":
            self.sent += 1
            if self.lose > 0:
                self.lose -= 1
                response.read()
                response.close()
                raise httpx.ReadError("connection reset by peer", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_create_retries_a_lost_answer_with_its_key_and_makes_one_server(
    served: Served, cloud: ApiClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(server_cli.time, "sleep", lambda _s: None)
    network = LoseFirstAnswers(lose=2)
    with ApiClient(served.url, served.admin, transport=network) as api:
        created = server_cli._create_retrying(api, "vnf-1", "vnf", [])
    assert network.sent == 3
    assert [s["id"] for s in cloud.list_servers()] == [created["id"]]
    assert len(created["devices"]) == 2
    err = capsys.readouterr().err
    assert err.count("sending the create again") == 2 and "Idempotency-Key" in err

    # An answer lost every time: the create gives up with the error, still having made one server.
    network = LoseFirstAnswers(lose=server_cli.CREATE_ATTEMPTS)
    with ApiClient(served.url, served.admin, transport=network) as api, pytest.raises(ServiceUnavailable):
        server_cli._create_retrying(api, "vnf-2", "vnf", [])
    assert sorted(s["name"] for s in cloud.list_servers()) == ["vnf-1", "vnf-2"]
