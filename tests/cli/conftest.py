"""CLI tests run against the real API, served by uvicorn in a thread on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from epa.inventory import Database
from support.served import Served, serve_in_thread


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test may read the real user's client config or admin token file."""
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    for name in ("EPA_URL", "EPA_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def served(sqlite_db: Database) -> Iterator[Served]:
    with serve_in_thread(sqlite_db) as s:
        yield s
