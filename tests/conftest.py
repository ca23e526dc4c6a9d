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
import os  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import sqlalchemy  # noqa: E402

from epa.inventory import Database  # noqa: E402

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
