"""The API docs page in a real headless Chromium: Swagger UI, loaded from this server only, renders the OpenAPI
document's operations under the page's Content-Security-Policy, with no script error and no CSP violation."""

from __future__ import annotations

from typing import Any

from dashboard.cloud import Cloud
from dashboard.test_dashboard_browser import page

__all__ = ["page"]  # the dashboard tests' Chromium page (it fails the test on any script error)


def test_the_docs_render_every_operation_under_the_csp(cloud: Cloud, page: Any) -> None:
    from playwright.sync_api import expect

    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(cloud.url + "/docs")
    expect(page.locator('.opblock-summary-path[data-path="/v1/hosts/{name}/inventory"]')).to_be_visible()
    expect(page.locator('.opblock-summary-path[data-path="/v1/servers"]').first).to_be_visible()
    assert not violations, violations
    assert requests and all(u.startswith(cloud.url) for u in requests), requests
