"""The dashboard's page and files over plain HTTP: public, with the right content types, and nothing else served."""

from __future__ import annotations

import httpx
import pytest

from dashboard.cloud import Cloud


@pytest.mark.parametrize("path", ["/", "/dashboard"])
def test_page_is_served_without_a_token(cloud: Cloud, path: str) -> None:
    resp = httpx.get(cloud.url + path)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>EPA dashboard</title>" in resp.text
    assert '<script src="/dashboard/static/dashboard.js"' in resp.text
    # The page runs only its own script and talks only to its own origin.
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert resp.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "content_type", "marker"),
    [
        ("dashboard.js", "text/javascript; charset=utf-8", "Authorization"),
        ("dashboard.css", "text/css; charset=utf-8", ".host-tree"),
        ("topology.js", "text/javascript; charset=utf-8", "function renderTopology"),
    ],
)
def test_static_files_are_served_with_their_content_types(
    cloud: Cloud, name: str, content_type: str, marker: str
) -> None:
    resp = httpx.get(f"{cloud.url}/dashboard/static/{name}")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == content_type
    assert marker in resp.text


@pytest.mark.parametrize("name", ["index.html.bak", "..%2F__init__.py", "%2E%2E%2F%2E%2E%2Fapp.py", "nope.js"])
def test_only_the_dashboard_files_are_served(cloud: Cloud, name: str) -> None:
    resp = httpx.get(f"{cloud.url}/dashboard/static/{name}")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"


def test_the_script_never_parses_data_as_html(cloud: Cloud) -> None:
    script = httpx.get(f"{cloud.url}/dashboard/static/dashboard.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_the_data_still_needs_the_token(cloud: Cloud) -> None:
    resp = httpx.get(cloud.url + "/v1/hosts")
    assert resp.status_code == 401
