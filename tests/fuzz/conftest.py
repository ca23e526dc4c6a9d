"""The seeded cloud that the fuzz tests hit: one per module and backend (seeding goes through the API).

Every fuzz test runs on SQLite and on PostgreSQL; PostgreSQL gets a fresh database, dropped afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from fuzz.cloud import Cloud, seeded
from support.pg import pg_database, sqlite_url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with contextlib.ExitStack() as stack:
        url = sqlite_url(root) if request.param == "sqlite" else stack.enter_context(pg_database())
        yield stack.enter_context(seeded(root, url))
