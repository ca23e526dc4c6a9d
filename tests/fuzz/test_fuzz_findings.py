"""What the fuzzers found, each reproduced as the request that broke the contract (400, never 500)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from epa.domain.alias import InvalidAlias, parse_aliases
from fuzz.cloud import Cloud


@pytest.mark.parametrize("key", ["numa_policy", "device_type"])
@pytest.mark.parametrize("value", [[], {}, [1]])
def test_an_alias_with_a_non_string_enum_value_is_invalid_input_not_a_crash(cloud: Cloud, key: str, value: Any) -> None:
    body = {"name": "nic", "vendor_id": "8086", "product_id": "154c", key: value}
    with pytest.raises(InvalidAlias, match=key):
        parse_aliases([body])
    cloud.restore()
    before = cloud.fingerprint()
    response = cloud.client.post("/v1/aliases", json=body, headers={"Authorization": f"Bearer {cloud.admin}"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_alias"
    assert key in response.json()["error"]["message"]
    assert cloud.fingerprint() == before


# Found on PostgreSQL: its INTEGER columns hold 32 bits, where SQLite stores any 64-bit number. The API
# took larger numbers and PostgreSQL failed with "integer out of range" (500); SQLite answered 409 or 200.
@pytest.mark.parametrize("host", ["nfv-1", "no-such-host"])
def test_an_inventory_generation_beyond_32_bits_is_invalid_input_on_every_backend(cloud: Cloud, host: str) -> None:
    report = {**cloud.report, "generation": 2**31}
    assert_refused(cloud, "PUT", f"/v1/hosts/{host}/inventory", report, "generation")


def test_a_numa_cell_with_memory_beyond_32_bits_is_invalid_input_on_every_backend(cloud: Cloud) -> None:
    report = copy.deepcopy(cloud.report)
    report["numa_cells"][0]["memory_mb"] = 2**31
    assert_refused(cloud, "PUT", f"/v1/hosts/{cloud.host}/inventory", report, "memory_mb")


# Found on PostgreSQL: its text cannot hold NUL, so a NUL in a name, a query parameter or a body field was a
# 500 there, while SQLite stored it (an alias named "a\x00b") or answered 404. A lone surrogate (JSON allows
# "\ud800", Unicode does not) cannot be encoded for either database: an alias named so was a 500 on SQLite.
def bodies_with(cloud: Cloud, bad: str) -> list[tuple[str, str, Any, str]]:
    report = copy.deepcopy(cloud.report)
    report["devices"][3]["tags"] = {"rack": f"r{bad}1"}
    return [
        ("POST", "/v1/aliases", {"name": f"a{bad}b", "vendor_id": "8086"}, "body.name"),
        ("POST", "/v1/aliases", [{"name": "nic", "vendor_id": "8086", f"k{bad}": "v"}], "body[0]"),
        (
            "POST",
            "/v1/flavors",
            {"name": "f", "vcpus": 1, "memory_mb": 64, "pci_passthrough:alias": f"q{bad}:1"},
            "body.pci_passthrough:alias",
        ),
        ("POST", "/v1/servers", {"name": "vnf-2", "flavor": f"vnf{bad}"}, "body.flavor"),
        ("POST", "/v1/scheduler/explain", {"flavor": f"vnf{bad}"}, "body.flavor"),
        ("POST", f"/v1/servers/{cloud.server}/state", {"domain_state": f"running{bad}"}, "body.domain_state"),
        ("POST", f"/v1/servers/{cloud.server}/state", {"domain_xml": f"<domain>{bad}</domain>"}, "body.domain_xml"),
        ("PUT", f"/v1/hosts/{cloud.host}/inventory", report, "body.devices[3].tags.rack"),
    ]


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
def test_body_text_that_no_database_can_store_is_invalid_input_on_every_backend(cloud: Cloud, bad: str) -> None:
    for method, url, body, where in bodies_with(cloud, bad):
        assert_refused(cloud, method, url, body, where)


@pytest.mark.parametrize(
    ("method", "url", "where"),
    [
        ("GET", "/v1/hosts/a%00b", "name"),
        ("DELETE", "/v1/hosts/a%00b", "name"),
        ("GET", "/v1/aliases/a%00b", "name"),
        ("DELETE", "/v1/aliases/a%00b", "name"),
        ("GET", "/v1/flavors/a%00b", "name"),
        ("DELETE", "/v1/flavors/a%00b", "name"),
        ("GET", "/v1/servers/a%00b", "server_id"),
        ("POST", "/v1/servers/a%00b/stop", "server_id"),
        ("GET", "/v1/servers?host=a%00b", "host"),
        ("GET", "/v1/devices?host=a%00b", "host"),
        ("GET", "/v1/devices?marker=a%00b", "marker"),
    ],
)
def test_a_nul_in_the_url_is_invalid_input_on_every_backend(cloud: Cloud, method: str, url: str, where: str) -> None:
    assert_refused(cloud, method, url, None, where)


def assert_refused(cloud: Cloud, method: str, url: str, body: Any, where: str) -> None:
    """``body`` goes as ASCII JSON (``\\u`` escapes: how a lone surrogate travels); 400 naming ``where``."""
    cloud.restore()
    before = cloud.fingerprint()
    content = json.dumps(body) if body is not None else None
    headers = {"Authorization": f"Bearer {cloud.admin}", "Content-Type": "application/json"}
    response = cloud.client.request(method, url, content=content, headers=headers)
    what = f"{method} {url} {content or ''}"[:200]
    assert response.status_code == 400, f"{what}: {response.status_code} {response.text[:300]}"
    error = response.json()["error"]
    assert error["code"] == "invalid_input", f"{what}: {error}"
    assert where in error["message"], f"{what}: {error}"
    assert cloud.fingerprint() == before, what
