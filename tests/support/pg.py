"""Throwaway test databases: a fresh PostgreSQL database per use (created and dropped here), or a SQLite file.

PostgreSQL missing is a skip, with the reason in the summary, unless EPA_REQUIRE_POSTGRES=1 (.ci/run sets
it): then it is a failure, so that CI never passes on skipped PostgreSQL tests."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

PG_URL_ENV = "EPA_TEST_PG_URL"
# The server's maintenance database; each test gets a database of its own beside it.
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_pg_unreachable: list[str] = []


def _pg_missing(reason: str) -> None:
    """Skip, with the reason in the summary - unless CI said PostgreSQL must be there (.ci/run does)."""
    if os.environ.get("EPA_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} and EPA_REQUIRE_POSTGRES=1")
    pytest.skip(reason)


def pg_admin_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


@contextlib.contextmanager
def _pg_admin() -> Iterator[sqlalchemy.Connection]:
    url = pg_admin_url()
    if _pg_unreachable:
        _pg_missing(_pg_unreachable[0])
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        try:
            connection = engine.connect()
        except sqlalchemy.exc.OperationalError as e:
            _pg_unreachable.append(
                f"PostgreSQL at {url} is unreachable (set {PG_URL_ENV} to another server): "
                f"{str(e.orig).strip().splitlines()[0]}"
            )
            _pg_missing(_pg_unreachable[0])
        with connection:
            yield connection
    finally:
        engine.dispose()


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (URL), dropped afterwards whatever is still connected."""
    name = f"epa_test_{uuid.uuid4().hex[:8]}"
    with _pg_admin() as admin:
        admin.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sqlalchemy.make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with _pg_admin() as admin:
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'epa.sqlite'}"
