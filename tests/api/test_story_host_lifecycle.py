"""Story: an operator creates a host, looks at it, disables it, rotates its token and deletes it."""

from __future__ import annotations

from support.api_story import Api


def test_host_lifecycle(api: Api) -> None:
    created = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)
    assert created["host"]["name"] == "nfv-1"
    assert created["host"]["generation"] == 0
    assert created["host"]["last_report_at"] is None
    token = created["agent_token"]
    assert len(token) >= 32

    api.error("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=409, code="conflict")
    message = api.error("POST", "/v1/hosts", json={"name": "bad name!"}, expect=400, code="invalid_input")
    assert "name" in message and "'bad name!'" in message
    message = api.error("POST", "/v1/hosts", json={"name": "ok", "extra": 1}, expect=400, code="invalid_input")
    assert "extra" in message

    assert [h["name"] for h in api.call("GET", "/v1/hosts")["hosts"]] == ["nfv-1"]
    assert api.call("GET", "/v1/hosts/nfv-1", token=token)["enabled"] is True
    api.error("GET", "/v1/hosts/nope", expect=404, code="not_found")

    assert api.call("PATCH", "/v1/hosts/nfv-1", json={"enabled": False})["enabled"] is False
    message = api.error("PATCH", "/v1/hosts/nfv-1", json={"enabled": "maybe"}, expect=400, code="invalid_input")
    assert "enabled" in message and "'maybe'" in message

    new_token = api.call("POST", "/v1/hosts/nfv-1/token")["agent_token"]
    api.error("GET", "/v1/hosts/nfv-1", token=token, expect=401, code="unauthorized")
    assert api.call("GET", "/v1/hosts/nfv-1", token=new_token)["name"] == "nfv-1"

    api.call("DELETE", "/v1/hosts/nfv-1", expect=204)
    api.error("GET", "/v1/hosts/nfv-1", expect=404, code="not_found")
    api.error("GET", "/v1/hosts/nfv-1", token=new_token, expect=401, code="unauthorized")


def test_health_and_openapi_need_no_token(api: Api) -> None:
    assert api.call("GET", "/healthz", token=None) == {"status": "ok"}
    spec = api.call("GET", "/openapi.json", token=None)
    assert "/v1/hosts/{name}/inventory" in spec["paths"]
    assert api.client.get("/docs").status_code == 200
