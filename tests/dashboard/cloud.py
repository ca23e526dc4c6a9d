"""The served app the dashboard tests drive: its URL, the admin token, and an HTTP client that sends it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

PORT = {"physnet": "physnet1", "vnic_type": "direct"}


@dataclass
class Cloud:
    """The served app, its admin token, and an HTTP client that sends the token."""

    url: str
    admin: str
    http: httpx.Client

    def call(self, method: str, path: str, *, json: Any = None, expect: int = 200) -> Any:
        resp = self.http.request(method, path, json=json)
        assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None
