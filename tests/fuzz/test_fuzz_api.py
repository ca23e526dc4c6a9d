"""Fuzz the API from its own OpenAPI schema (schemathesis) and with garbage JSON bodies (hypothesis).

Properties, for every request: never a 5xx; every 4xx has the error shape with a stable code; every 2xx
body matches the response schema the API publishes; and a rejected write (POST/PUT/PATCH/DELETE answered
4xx) leaves the database exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from fuzz.cloud import Cloud, stable_codes

pytestmark = pytest.mark.slow

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Bounded so that the module stays near a minute per backend on two cores, and the same in every run.
SCHEMA_EXAMPLES = 15
GARBAGE_EXAMPLES = 300
# PostgreSQL runs every property on every operation and route too, with half the examples: what differs
# there (column types and limits, text it cannot hold) shows within a few examples, and the full count
# would double the module's time.
BACKEND_SHARE = {"sqlite": 1.0, "postgresql": 0.5}
FUZZ = settings(
    max_examples=SCHEMA_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def examples(cloud: Cloud, count: int) -> int:
    return max(1, round(count * BACKEND_SHARE[cloud.db.dialect]))


def problems(cloud: Cloud, method: str, status: int, body: bytes, before: dict[str, str]) -> list[str]:
    """What is wrong with one answer (empty when nothing is)."""
    found: list[str] = []
    if status >= 500:
        found.append(f"answered {status}")
    if 400 <= status < 500:
        try:
            error = json.loads(body)["error"]
            ok = (
                isinstance(error["code"], str) and isinstance(error["message"], str) and error["code"] in stable_codes()
            )
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            found.append(f"4xx body without a stable error code: {body[:300]!r}")
        if method in WRITES:
            after = cloud.fingerprint()
            changed = sorted(t for t in before if before[t] != after.get(t))
            if changed:
                found.append(f"rejected write changed tables {changed}")
    return found


def schema_problems(case: schemathesis.Case, response: Any) -> list[str]:
    """A success body that the published OpenAPI schema does not describe (its response model)."""
    try:
        case.validate_response(response, checks=[response_schema_conformance])
    except Exception as e:  # schemathesis raises its own failure group, naming the field and the value
        return [f"2xx body does not match the OpenAPI schema: {str(e)[:600]}"]
    return []


def check(cloud: Cloud, method: str, status: int, body: bytes, before: dict[str, str], what: str) -> None:
    found = problems(cloud, method, status, body, before)
    assert not found, f"{what} -> {status}: {'; '.join(found)}\n{body[:500]!r}"


# The strategies that cannot make a single request (nothing to make invalid: an operation whose only
# parameters are free strings). Hypothesis needs ~460 draws, seconds, to conclude so; the answer depends on
# the schema alone, so the backend that fuzzes second skips what the first one learned (about 40 s).
NOTHING_TO_SEND: set[str] = set()


def fuzz_operation(cloud: Cloud, operation: schemathesis.APIOperation, auth: dict[str, str]) -> str | None:
    """Valid and invalid requests to one operation, on random and on real path parameters; the first problem."""
    real = {k: v for k, v in cloud.real_path_parameters(operation.path).items() if f"{{{k}}}" in operation.path}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for params in [{}, real] if real else [{}]:
            name = f"{operation.label} ({mode.value}, {'real' if params else 'random'} path)"
            if name in NOTHING_TO_SEND:
                continue
            strategy = operation.as_strategy(generation_mode=mode, headers=auth, path_parameters=params)
            problem = fuzz_strategy(cloud, strategy, name)
            if problem is not None:
                return f"{name}: {problem}"
    return None


def fuzz_strategy(cloud: Cloud, strategy: st.SearchStrategy[schemathesis.Case], name: str) -> str | None:
    """Run one strategy's examples; the (shrunk) problem found, if any."""
    seen: list[str] = []

    @settings(FUZZ, max_examples=examples(cloud, SCHEMA_EXAMPLES))
    @given(case=strategy)
    def fuzz(case: schemathesis.Case) -> None:
        cloud.restore()
        before = cloud.fingerprint() if case.method.upper() in WRITES else {}
        try:
            response = case.call()
        except Exception as e:
            seen.append(f"{case.as_curl_command()}\n  -> raised {e!r}")
            raise
        found = problems(cloud, case.method.upper(), response.status_code, response.content, before)
        if response.status_code < 300:
            found += schema_problems(case, response)
        if found:
            seen.append(f"{case.as_curl_command()}\n  -> {response.status_code}: {'; '.join(found)}")
        assert not found

    try:
        fuzz()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body): nothing to send
        NOTHING_TO_SEND.add(name)
        return None
    except Exception:  # the shrunk example is the last one recorded
        return seen[-1]
    return None


def test_the_fingerprint_sees_a_write_and_restoring_puts_the_seeded_cloud_back(cloud: Cloud) -> None:
    """Without this, "a rejected write changes nothing" could hold only because nothing is ever seen."""
    cloud.restore()
    seeded = cloud.fingerprint()
    auth = {"Authorization": f"Bearer {cloud.admin}"}
    for method, url, body in valid_bodies(cloud):
        response = cloud.client.request(method, url, json=body, headers=auth)
        assert response.status_code < 300, f"{method} {url}: {response.status_code} {response.text}"
        if method != "POST" or not url.endswith("/explain"):
            assert cloud.fingerprint() != seeded, f"{method} {url} changed nothing that the fingerprint sees"
        cloud.restore()
        assert cloud.fingerprint() == seeded, f"restoring after {method} {url}"


def test_every_success_answer_of_the_seeded_cloud_matches_the_published_schema(cloud: Cloud) -> None:
    """Each read on the seeded things, and each write that succeeds, once: the answer is what the schema says
    (the fuzz below checks the same on random requests, where few writes get through)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", cloud.app)
    auth = {"Authorization": f"Bearer {cloud.admin}"}
    writes = {(method, url): body for method, url, body in valid_bodies(cloud)}
    checked, failures = 0, []
    for operation in (result.ok() for result in schema.get_all_operations()):
        method = operation.method.upper()
        params = {k: v for k, v in cloud.real_path_parameters(operation.path).items() if f"{{{k}}}" in operation.path}
        url = operation.path.format(**params)
        if method != "GET" and (method, url) not in writes:
            continue
        cloud.restore()
        body = writes.get((method, url))
        extra = {"body": body, "media_type": "application/json"} if body is not None else {}
        case = operation.Case(path_parameters=params, headers=auth, **extra)
        if not operation.path.startswith("/v1/") or operation.path.endswith("/console") or "{part}" in operation.path:
            continue  # files, not JSON; and no console was sent nor part uploaded in the seeded cloud
        response = case.call()
        if response.status_code >= 300:
            failures.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
            continue
        failures += [f"{method} {url}: {p}" for p in schema_problems(case, response)]
        checked += 1
    assert not failures, "\n".join(failures)
    assert checked > 15


# 46 operations x 15 examples: over the default 120 s when the two cores are shared (a deadline, not a measure).
@pytest.mark.timeout(420)
def test_every_operation_of_the_schema_keeps_the_error_contract(cloud: Cloud) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", cloud.app)
    auth = {"Authorization": f"Bearer {cloud.admin}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 25, [op.label for op in operations]
    failures = [f for f in (fuzz_operation(cloud, op, auth) for op in operations) if f is not None]
    assert not failures, "\n".join(failures)


# Random nested JSON: what a confused client or an attacker may send as a body.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "name",
        "generation",
        "devices",
        "numa_cells",
        "flavor",
        "ports",
        "enabled",
        "status",
        "vcpus",
        "memory_mb",
        "pci_passthrough:alias",
        "vendor_id",
        "product_id",
        "address",
        "tags",
        "limit",
        "reason",
        "domain_xml",
    ]
)
# Bodies that look almost right: the keys the routes read, with values of any type.
NEAR_MISS = st.dictionaries(KEYS, JSON, max_size=6)


def write_routes(cloud: Cloud) -> list[tuple[str, str]]:
    spec = cloud.app.openapi()
    out = []
    for path, item in spec["paths"].items():
        for method in item:
            if method.upper() in WRITES:
                out.append((method.upper(), path.format(**cloud.real_path_parameters(path))))
    return sorted(out)


def test_garbage_json_bodies_to_the_write_routes_keep_the_error_contract(cloud: Cloud) -> None:
    routes = write_routes(cloud)
    assert len(routes) > 10, routes
    tokens = {"admin": cloud.admin, "agent": cloud.agent}
    hit: set[tuple[str, str]] = set()

    # Each route gets its share of the examples (one draw over all routes left the rarest unreached).
    share = max(5, examples(cloud, GARBAGE_EXAMPLES) // len(routes))

    def fuzzer(route: tuple[str, str]) -> Callable[[], None]:
        @settings(FUZZ, max_examples=share)
        @given(body=JSON | NEAR_MISS, who=st.sampled_from(sorted(tokens)))
        def fuzz(body: Any, who: str) -> None:
            method, url = route
            hit.add(route)
            cloud.restore()
            before = cloud.fingerprint()
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            response = cloud.client.request(method, url, json=body, headers=headers)
            check(cloud, method, response.status_code, response.content, before, f"{who}: {method} {url} {body!r}")

        return fuzz

    for route in routes:
        fuzzer(route)()
    assert hit == set(routes), f"never fuzzed: {sorted(set(routes) - hit)}"


def valid_bodies(cloud: Cloud) -> list[tuple[str, str, Any]]:
    """Requests that would succeed: the starting points for bodies with one part spoiled."""
    return [
        ("PUT", f"/v1/hosts/{cloud.host}/inventory", cloud.report),
        ("POST", "/v1/servers", {"name": "vnf-2", "flavor": cloud.flavor, "ports": [{"physnet": "physnet1"}]}),
        ("POST", "/v1/aliases", {"name": "nic", "vendor_id": "8086", "product_id": "154c", "numa_policy": "socket"}),
        ("POST", "/v1/aliases", [{"name": "any", "vendor_id": "8086"}, {"name": "any", "vendor_id": "10de"}]),
        ("POST", "/v1/flavors", {"name": "f2", "vcpus": 1, "memory_mb": 512, "pci_passthrough:alias": "qat:1"}),
        ("PATCH", f"/v1/hosts/{cloud.host}", {"enabled": False}),
        ("POST", f"/v1/servers/{cloud.server}/state", {"status": "building", "domain_uuid": None}),
        ("POST", "/v1/scheduler/explain", {"flavor": cloud.flavor, "limit": 3}),
    ]


def spoil(body: Any, data: st.DataObject) -> Any:
    """``body`` with one value somewhere inside replaced by random JSON (or a key dropped or added)."""
    if isinstance(body, dict) and body:
        key = data.draw(st.sampled_from(sorted(body)))
        action = data.draw(st.sampled_from(["descend", "replace", "drop", "add"]))
        out = dict(body)
        if action == "descend":
            out[key] = spoil(body[key], data)
        elif action == "replace":
            out[key] = data.draw(JSON)
        elif action == "drop":
            del out[key]
        else:
            out[data.draw(st.text(max_size=12))] = data.draw(JSON)
        return out
    if isinstance(body, list) and body:
        index = data.draw(st.integers(0, len(body) - 1))
        return [spoil(item, data) if i == index else item for i, item in enumerate(body)]
    return data.draw(JSON)


def test_valid_bodies_with_one_part_spoiled_keep_the_error_contract(cloud: Cloud) -> None:
    bodies = valid_bodies(cloud)
    auth = {"Authorization": f"Bearer {cloud.admin}"}
    for method, url, body in bodies:  # the starting points are really valid
        cloud.restore()
        response = cloud.client.request(method, url, json=body, headers=auth)
        assert response.status_code < 300, f"{method} {url}: {response.status_code} {response.text}"

    hit: set[int] = set()

    @settings(FUZZ, max_examples=examples(cloud, GARBAGE_EXAMPLES))
    @given(start=st.sampled_from(range(len(bodies))), data=st.data())
    def fuzz(start: int, data: st.DataObject) -> None:
        method, url, body = bodies[start]
        hit.add(start)
        spoiled = spoil(body, data)
        cloud.restore()
        before = cloud.fingerprint()
        response = cloud.client.request(method, url, json=spoiled, headers=auth)
        check(cloud, method, response.status_code, response.content, before, f"{method} {url} {spoiled!r}")

    fuzz()
    assert hit == set(range(len(bodies))), (
        f"never spoiled: {[bodies[i][:2] for i in range(len(bodies)) if i not in hit]}"
    )
