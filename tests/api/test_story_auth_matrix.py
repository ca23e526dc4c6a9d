"""Story: every route's auth requirement, for no token, a wrong token, an agent on its own host, an agent
on another host, and the admin. A route missing from ROUTES fails the last test."""

from __future__ import annotations

import pytest

from support.api_story import Api

OPEN = {
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    # The dashboard's page and its static files are public; the data it shows needs the admin token.
    ("GET", "/"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/static/{name}"),
}

# (method, route template, the concrete URL on host "a", body, allowed for host a's agent)
ROUTES: list[tuple[str, str, str, object, bool]] = [
    ("POST", "/v1/hosts", "/v1/hosts", {"name": "c"}, False),
    ("GET", "/v1/hosts", "/v1/hosts", None, False),
    ("GET", "/v1/hosts/{name}", "/v1/hosts/a", None, True),
    ("PATCH", "/v1/hosts/{name}", "/v1/hosts/a", {"enabled": True}, False),
    ("POST", "/v1/hosts/{name}/token", "/v1/hosts/a/token", None, False),
    (
        "PUT",
        "/v1/hosts/{name}/hypervisor",
        "/v1/hosts/a/hypervisor",
        {"uri": "qemu:///system", "reachable": True, "domain_type": "kvm"},
        True,
    ),
    ("PUT", "/v1/hosts/{name}/images", "/v1/hosts/a/images", {"parts": []}, True),
    ("DELETE", "/v1/hosts/{name}", "/v1/hosts/a", None, False),
    (
        "PUT",
        "/v1/hosts/{name}/inventory",
        "/v1/hosts/a/inventory",
        {"generation": 0, "numa_cells": [], "devices": []},
        True,
    ),
    ("POST", "/v1/hosts/{name}/heartbeat", "/v1/hosts/a/heartbeat", {"generation": 1}, True),
    ("GET", "/v1/devices", "/v1/devices", None, False),
    ("GET", "/v1/hosts/{name}/devices/{address}", "/v1/hosts/a/devices/0000:00:00.0", None, False),
    ("POST", "/v1/aliases", "/v1/aliases", {"name": "x"}, False),
    ("GET", "/v1/aliases", "/v1/aliases", None, False),
    ("GET", "/v1/aliases/{name}", "/v1/aliases/x", None, False),
    ("DELETE", "/v1/aliases/{name}", "/v1/aliases/x", None, False),
    ("POST", "/v1/flavors", "/v1/flavors", {"name": "f", "vcpus": 1, "memory_mb": 1}, False),
    ("GET", "/v1/flavors", "/v1/flavors", None, False),
    ("GET", "/v1/flavors/{name}", "/v1/flavors/f", None, False),
    ("DELETE", "/v1/flavors/{name}", "/v1/flavors/f", None, False),
    ("POST", "/v1/servers", "/v1/servers", {"name": "s", "flavor": "f"}, False),
    ("GET", "/v1/servers", "/v1/servers", None, False),
    ("GET", "/v1/servers/{server_id}", "/v1/servers/0", None, False),
    ("DELETE", "/v1/servers/{server_id}", "/v1/servers/0", None, False),
    ("POST", "/v1/servers/{server_id}/stop", "/v1/servers/0/stop", None, False),
    ("POST", "/v1/servers/{server_id}/start", "/v1/servers/0/start", None, False),
    ("GET", "/v1/hosts/{name}/servers", "/v1/hosts/a/servers", None, True),
    ("POST", "/v1/servers/{server_id}/state", "/v1/servers/{on_a}/state", {"domain_state": "running"}, True),
    ("POST", "/v1/servers/{server_id}/released", "/v1/servers/{on_a}/released", None, True),
    ("POST", "/v1/scheduler/explain", "/v1/scheduler/explain", {"flavor": "f"}, False),
    ("GET", "/metrics", "/metrics", None, False),  # host names and their use: admin unless --metrics-public
    ("PUT", "/v1/servers/{server_id}/console", "/v1/servers/{on_a}/console", {"text": "boot"}, True),
    ("GET", "/v1/servers/{server_id}/console", "/v1/servers/{on_a}/console", None, False),
    ("POST", "/v1/images", "/v1/images", {"name": "i"}, False),
    ("GET", "/v1/images", "/v1/images", None, False),
    ("GET", "/v1/images/{name}", "/v1/images/i", None, False),
    ("DELETE", "/v1/images/{name}", "/v1/images/i", None, False),
    ("PUT", "/v1/images/{name}/{part}", "/v1/images/i/disk", None, False),
    # An agent reads an image only while a server on its host boots it (no server here does; the
    # positive case is in test_story_images).
    ("GET", "/v1/images/{name}/{part}", "/v1/images/i/disk", None, False),
]


@pytest.fixture
def tokens(api: Api) -> dict[str, str]:
    a = api.call("POST", "/v1/hosts", json={"name": "a"}, expect=201)["agent_token"]
    b = api.call("POST", "/v1/hosts", json={"name": "b"}, expect=201)["agent_token"]
    cells = [{"node": 0, "socket": 0, "cpus": [0, 1], "memory_mb": 1024}]
    api.call("PUT", "/v1/hosts/a/inventory", token=a, json={"generation": 0, "numa_cells": cells, "devices": []})
    api.call("POST", "/v1/flavors", json={"name": "tiny", "vcpus": 1, "memory_mb": 16}, expect=201)
    server = api.call("POST", "/v1/servers", json={"name": "s", "flavor": "tiny"}, expect=201)
    assert server["host"] == "a"
    return {"a": a, "b": b, "on_a": server["id"]}


@pytest.mark.parametrize(("method", "template", "url", "body", "agent_ok"), ROUTES)
def test_route_auth(
    api: Api, tokens: dict[str, str], method: str, template: str, url: str, body: object, agent_ok: bool
) -> None:
    url = url.replace("{on_a}", tokens["on_a"])

    def send(token: str | None) -> tuple[int, dict[str, object]]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        resp = api.client.request(method, url, json=body, headers=headers)
        is_json = resp.headers.get("content-type", "").startswith("application/json")
        return resp.status_code, (resp.json() if is_json else {})

    for token in (None, "not-a-token", ""):
        status, answer = send(token)
        assert status == 401, (method, url, token, answer)
        assert answer["error"]["code"] == "unauthorized"  # type: ignore[index]
    status, answer = send(tokens["b"])  # another host's agent
    assert status == 403, (method, url, answer)
    status, answer = send(tokens["a"])
    if agent_ok:
        assert status not in (401, 403), (method, url, answer)
    else:
        assert status == 403, (method, url, answer)
        assert answer["error"]["code"] == "forbidden"  # type: ignore[index]
    status, answer = send(api.admin)
    assert status not in (401, 403), (method, url, answer)


def test_every_route_is_in_the_matrix(api: Api) -> None:
    spec = api.call("GET", "/openapi.json", token=None)
    served = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops} - OPEN
    assert served == {(m, t) for m, t, _, _, _ in ROUTES}
