"""Story: the bodies that boot a server are larger than the edge's default cap, and get caps of their own:
a create with the largest user-data and SSH keys it allows, a console tail of control characters, an image
part of many megabytes. Each is taken whole; past its own cap a body is 413 naming the limit."""

from __future__ import annotations

from epa.api.limits import CONSOLE_BODY_LIMIT, DEFAULT_BODY_LIMIT, SERVER_CREATE_BODY_LIMIT
from support.api_story import Api

_CELLS = [{"node": 0, "socket": 0, "cpus": [0, 1], "memory_mb": 4096}]


def _host_with_a_server(api: Api, **boot: object) -> tuple[str, dict]:
    agent = api.call("POST", "/v1/hosts", json={"name": "h1"}, expect=201)["agent_token"]
    api.call("PUT", "/v1/hosts/h1/inventory", token=agent, json={"generation": 0, "numa_cells": _CELLS, "devices": []})
    api.call("POST", "/v1/flavors", json={"name": "tiny", "vcpus": 1, "memory_mb": 64}, expect=201)
    api.call("POST", "/v1/images", json={"name": "img"}, expect=201)
    resp = api.client.put(
        "/v1/images/img/disk", content=b"\0" * (4 * 1024 * 1024), headers={"Authorization": f"Bearer {api.admin}"}
    )
    assert resp.status_code == 200, resp.text  # 4 MiB: far past the default cap, streamed into the database
    server = api.call("POST", "/v1/servers", json={"name": "vm", "flavor": "tiny", "image": "img", **boot}, expect=201)
    return agent, server


def test_a_create_with_the_largest_user_data_and_keys_is_taken(api: Api) -> None:
    # Every character a control character: JSON spells each in 6 bytes, 384 KiB of body for 64 Ki characters.
    user_data = "\x01" * 65536
    keys = [f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i:02d}" + "A" * 8000 for i in range(16)]
    _, server = _host_with_a_server(api, user_data=user_data, ssh_keys=keys)
    assert server["ssh_keys"] == keys
    # Past the create's own cap: 413 naming the limit, nothing created.
    huge = {"name": "vm2", "flavor": "tiny", "image": "img", "user_data": "x" * SERVER_CREATE_BODY_LIMIT}
    message = api.error("POST", "/v1/servers", json=huge, expect=413, code="payload_too_large")
    assert str(SERVER_CREATE_BODY_LIMIT) in message
    assert [s["name"] for s in api.call("GET", "/v1/servers")["servers"]] == ["vm"]


def test_a_console_tail_of_control_characters_is_taken(api: Api) -> None:
    agent, server = _host_with_a_server(api)
    text = "\x1b[2J" * (64 * 1024)  # 256 Ki characters, most of them spelt as \u001b
    assert len(text) * 2 > DEFAULT_BODY_LIMIT
    api.call("PUT", f"/v1/servers/{server['id']}/console", token=agent, json={"text": text})
    shown = api.call("GET", f"/v1/servers/{server['id']}/console?tail=5")
    assert "\x1b" not in str(shown)
    over = "x" * CONSOLE_BODY_LIMIT
    path = f"/v1/servers/{server['id']}/console"
    api.error("PUT", path, token=agent, json={"text": over}, expect=413, code="payload_too_large")
