"""Fuzz with oversized parts: valid bodies with one string grown to kilobytes (or past the body cap), one list
grown past its cap, or a name of any length; on SQLite and PostgreSQL. Properties, as for the other fuzzers:
never a 5xx, every 4xx in the error shape with a stable code, a rejected write changes nothing; and an error
message stays short whatever the size of the value it is about."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epa.api.errors import MAX_MESSAGE
from fuzz.cloud import Cloud
from fuzz.test_fuzz_api import FUZZ, check, examples, valid_bodies

pytestmark = pytest.mark.slow

OVERSIZED_EXAMPLES = 120
SIZES = st.sampled_from([65, 257, 4097, 70_000, 2_100_000])


def paths(body: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where a value sits in ``body``: every key path to a string, a list or a dict."""
    found = [prefix]
    if isinstance(body, dict):
        for key, child in body.items():
            found += paths(child, (*prefix, key))
    elif isinstance(body, list):
        for i, child in enumerate(body[:3]):
            found += paths(child, (*prefix, i))
    return found


def grown(body: Any, where: tuple[Any, ...], size: int, kind: str) -> Any:
    """``body`` with the value at ``where`` replaced by an oversized string, list or key."""
    if not where:
        if kind == "list" and isinstance(body, list) and body:
            return (body * (size // len(body) + 1))[: size // 64 + 2]
        if kind == "key" and isinstance(body, dict):
            return {**body, "k" * size: "v"}
        return "x" * size
    out = json.loads(json.dumps(body))
    parent = out
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = grown(parent[where[-1]], (), size, kind)
    return out


def test_oversized_parts_keep_the_error_contract_and_short_messages(cloud: Cloud) -> None:
    bodies = valid_bodies(cloud)
    auth = {"Authorization": f"Bearer {cloud.admin}"}
    hit: set[int] = set()

    @settings(FUZZ, max_examples=examples(cloud, OVERSIZED_EXAMPLES))
    @given(
        start=st.sampled_from(range(len(bodies))),
        data=st.data(),
        size=SIZES,
        kind=st.sampled_from(["string", "list", "key"]),
    )
    def fuzz(start: int, data: st.DataObject, size: int, kind: str) -> None:
        method, url, body = bodies[start]
        hit.add(start)
        where = data.draw(st.sampled_from(paths(body)))
        spoiled = grown(body, where, size, kind)
        cloud.restore()
        before = cloud.fingerprint()
        response = cloud.client.request(method, url, json=spoiled, headers=auth)
        what = f"{method} {url} with {kind} of {size} at {where}"
        check(cloud, method, response.status_code, response.content, before, what)
        if response.status_code >= 400:
            assert len(response.json()["error"]["message"]) <= MAX_MESSAGE, what
            assert len(response.content) < 2 * MAX_MESSAGE, what

    fuzz()
    assert hit == set(range(len(bodies)))


@pytest.mark.parametrize("size", [64, 1000, 20_000])  # an HTTP client refuses URLs past 64 kB
def test_names_of_any_length_in_paths_and_bodies_are_clean_errors(cloud: Cloud, size: int) -> None:
    name = "n" * size
    auth = {"Authorization": f"Bearer {cloud.admin}"}
    for method, url, body in [
        ("GET", f"/v1/hosts/{name}", None),
        ("DELETE", f"/v1/aliases/{name}", None),
        ("GET", f"/v1/devices?host={name}", None),
        ("POST", "/v1/hosts", {"name": name}),
        ("POST", "/v1/aliases", {"name": name, "vendor_id": "8086"}),
        ("POST", "/v1/flavors", {"name": name, "vcpus": 1, "memory_mb": 64}),
    ]:
        cloud.restore()
        before = cloud.fingerprint()
        response = cloud.client.request(method, url, json=body, headers=auth)
        check(cloud, method, response.status_code, response.content, before, f"{method} {url[:80]}")
        if url.startswith("/v1/devices"):  # a filter that names no host: an empty page, or 400 when too long
            assert response.status_code == (200 if size <= 256 else 400), (url[:80], response.status_code)
        else:
            assert 400 <= response.status_code < 500, (method, url[:80], response.status_code)
        if response.status_code >= 400:
            assert len(response.json()["error"]["message"]) < 400, (method, url[:80])
