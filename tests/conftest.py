"""Shared fixtures: simulated hosts rendered as /sys trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from epa.simulate.hosts import gpu_host, nfv_host, no_numa_host
from epa.simulate.model import SimHost
from epa.simulate.sysfs_tree import render_sysfs


@pytest.fixture
def nfv() -> SimHost:
    return nfv_host()


@pytest.fixture
def nfv_sysfs(tmp_path: Path, nfv: SimHost) -> Path:
    return render_sysfs(nfv, tmp_path / "nfv-sys")


@pytest.fixture
def no_numa_sysfs(tmp_path: Path) -> Path:
    return render_sysfs(no_numa_host(), tmp_path / "edge-sys")


@pytest.fixture
def gpu_sysfs(tmp_path: Path) -> Path:
    return render_sysfs(gpu_host(), tmp_path / "gpu-sys")


# --- Inventory databases: every inventory test runs on SQLite and on PostgreSQL. ---

import contextlib  # noqa: E402 - an appended section, kept self-contained
from collections.abc import Iterator  # noqa: E402

from epa.inventory import Database  # noqa: E402
from support.pg import pg_database, sqlite_url  # noqa: E402 - the helpers, shared with module-scoped fixtures


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database, not migrated (for migration and concurrency tests)."""
    with pg_database() as url:
        yield url


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    db = Database.connect(pg_url)
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database.connect(sqlite_url(tmp_path))
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated inventory database, once on SQLite (a file under tmp_path), once on PostgreSQL."""
    with contextlib.ExitStack() as stack:
        url = sqlite_url(tmp_path) if request.param == "sqlite" else stack.enter_context(pg_database())
        database = Database.connect(url)
        stack.callback(database.dispose)
        database.migrate()
        yield database
