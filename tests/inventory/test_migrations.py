"""Migrations: a fresh database reaches head, re-running is a no-op, the schema matches the models,
and two processes migrating one PostgreSQL database at once do not trip over each other."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from epa.errors import InvalidInput
from epa.inventory import Database
from epa.inventory.db import MIGRATIONS
from epa.inventory.schema import Base

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_fresh_database_reaches_head_and_rerun_is_a_noop(db: Database) -> None:
    assert db.current_revision() == HEAD
    tables = set(inspect(db.engine).get_table_names())
    db.migrate()
    assert db.current_revision() == HEAD
    assert set(inspect(db.engine).get_table_names()) == tables
    assert {"hosts", "numa_cells", "devices", "aliases", "flavors", "tokens"} <= tables


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_sqlite_creates_the_parent_directory_and_uses_wal(tmp_path: Path) -> None:
    db = Database.connect(f"sqlite:///{tmp_path / 'a' / 'b' / 'epa.db'}")
    try:
        db.migrate()
        assert (tmp_path / "a" / "b" / "epa.db").is_file()
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://", "not a url"])
def test_unsupported_urls_are_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput, match="database url"):
        Database.connect(url)


def test_two_processes_migrating_postgresql_at_once(pg_url: str) -> None:
    databases = [Database.connect(pg_url) for _ in range(2)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def migrate(db: Database) -> None:
        try:
            barrier.wait()
            db.migrate()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=migrate, args=(d,)) for d in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert all(d.current_revision() == HEAD for d in databases)
    finally:
        for d in databases:
            d.dispose()
