"""A step of an API story: a request and the status it must get."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient


@dataclass
class Api:
    """One step of a story: a request and the status it must get; returns the JSON body."""

    client: TestClient
    admin: str

    def call(self, method: str, path: str, *, token: str | None = "admin", json: Any = None, expect: int = 200) -> Any:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.admin if token == 'admin' else token}"
        resp = self.client.request(method, path, json=json, headers=headers)
        assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def error(
        self, method: str, path: str, *, expect: int, code: str, token: str | None = "admin", json: Any = None
    ) -> str:
        """A call that must fail with ``code``; returns the message."""
        body = self.call(method, path, token=token, json=json, expect=expect)
        assert body["error"]["code"] == code, body
        message: str = body["error"]["message"]
        return message
