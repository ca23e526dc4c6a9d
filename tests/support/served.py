"""The real API served by uvicorn in a thread, for tests that drive it with the CLI or the client."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Served:
    url: str
    admin: str
