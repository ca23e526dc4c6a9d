"""Story: every answer of every route (the OpenAPI document's, walked as in the auth matrix, and the public
pages) says ``X-Content-Type-Options: nosniff``; every API answer, and above all those that carry a token, says
``Cache-Control: no-store``; the docs page loads Swagger UI from this server only, under a CSP."""

from __future__ import annotations

import re

import pytest
from swagger_ui_bundle import swagger_ui_path

from api.test_story_auth_matrix import OPEN, ROUTES, tokens
from support.api_story import Api

__all__ = ["tokens"]  # the auth matrix's fixture: host a (with a server), host b


def assert_headers(resp_headers: dict[str, str], what: str, api_answer: bool) -> None:
    assert resp_headers.get("x-content-type-options") == "nosniff", what
    if api_answer:
        assert resp_headers.get("cache-control") == "no-store", what


@pytest.mark.parametrize(("method", "template", "url", "body", "agent_ok"), ROUTES)
def test_every_route_answers_with_the_security_headers(
    api: Api, tokens: dict[str, str], method: str, template: str, url: str, body: object, agent_ok: bool
) -> None:
    url = url.replace("{on_a}", tokens["on_a"])
    for who in (None, tokens["b"], api.admin):
        headers = {} if who is None else {"Authorization": f"Bearer {who}"}
        resp = api.client.request(method, url, json=body, headers=headers)
        assert_headers(dict(resp.headers), f"{method} {url} as {who} -> {resp.status_code}", api_answer=True)


def test_the_matrix_covers_the_served_routes(api: Api) -> None:
    spec = api.call("GET", "/openapi.json", token=None)
    served = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert served == {(m, t) for m, t, _, _, _ in ROUTES} | (OPEN & served)


def test_answers_that_carry_a_token_are_never_stored(api: Api) -> None:
    created = api.client.post("/v1/hosts", json={"name": "h"}, headers={"Authorization": f"Bearer {api.admin}"})
    assert created.status_code == 201 and "agent_token" in created.json()
    assert created.headers["cache-control"] == "no-store"
    rotated = api.client.post("/v1/hosts/h/token", headers={"Authorization": f"Bearer {api.admin}"})
    assert rotated.status_code == 200 and "agent_token" in rotated.json()
    assert rotated.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("url", ["/healthz", "/openapi.json", "/", "/dashboard", "/nowhere", "/docs"])
def test_public_pages_and_errors_say_nosniff(api: Api, url: str) -> None:
    resp = api.client.get(url)
    assert_headers(dict(resp.headers), url, api_answer=url in ("/healthz", "/openapi.json", "/nowhere"))


def test_the_docs_page_loads_swagger_ui_from_the_installed_package_under_a_csp(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-eval" not in csp
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/static/") for s in sources), sources
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    for source in sources:
        asset = api.client.get(source)
        assert asset.status_code == 200, source
        assert asset.headers["x-content-type-options"] == "nosniff"
    bundle = api.client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.content == (swagger_ui_path / "swagger-ui-bundle.js").read_bytes()
    assert api.client.get("/docs/static/..%2Fapp.py").status_code == 404
