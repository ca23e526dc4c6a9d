"""The database handle: connecting (SQLite or PostgreSQL, one code path), migrating, transactions.

Library errors are translated here, where they enter: a constraint violation is a ``Conflict``, a
database that cannot be reached or is locked is ``ServiceUnavailable``."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from epa.errors import Conflict, InvalidInput, ServiceUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock keys (any 64-bit number; these spell "EPAMIGR" and "EPAADMN").
MIGRATE_LOCK = 0x4550414D494752
ADMIN_TOKEN_LOCK = 0x45504141444D4E
SQLITE_BUSY_TIMEOUT_MS = 10_000
_READONLY = "epa_readonly"


def _first_line(error: BaseException) -> str:
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn SQLAlchemy's errors into EPA's (``what`` says what was being done)."""
    try:
        yield
    except IntegrityError as e:
        raise Conflict(f"{what}: the change conflicts with existing data ({_first_line(e)})") from e
    except (OperationalError, PoolTimeout) as e:
        raise ServiceUnavailable(f"{what}: the database is unavailable ({_first_line(e)})") from e


def private_file(path: Path) -> None:
    """Create the SQLite file ``path`` readable by its owner only (0600 whatever the umask; an older file is
    tightened), before SQLite opens it: SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, 0o600)


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:":
        # Each pooled connection would get its own empty in-memory database.
        raise InvalidInput(f"database url {url!r}: SQLite needs a file path (sqlite:///PATH)")
    private_file(Path(database).expanduser())
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        # Take transactions out of pysqlite's hands (it would not BEGIN before DDL or SELECT), so
        # that a transaction here is a real SQLite transaction; see the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # busy_timeout first: switching to WAL takes a lock that another process may hold.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the write lock up front: a deferred transaction that reads and then writes
        # fails at once with "database is locked" when another writer got there first, whatever
        # busy_timeout says. Read-only transactions stay deferred and run beside writers (WAL).
        readonly = connection.get_execution_options().get(_READONLY, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


class Database:
    """A connection pool to one inventory database. Create with ``Database.connect(url)``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(engine.execution_options(**{_READONLY: True}), expire_on_commit=False)
        self._write_gate = threading.RLock()

    @classmethod
    def connect(cls, url: str) -> Database:
        """``sqlite:///PATH`` (the parent directory is created) or ``postgresql+psycopg://...``."""
        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError as e:
            raise InvalidInput(f"database url {url!r} does not parse") from e
        if backend == "sqlite":
            return cls(_sqlite_engine(url))
        if backend == "postgresql":
            # pre_ping: a pooled connection may have been cut by a PostgreSQL restart or failover.
            return cls(create_engine(url, pool_pre_ping=True))
        raise InvalidInput(f"database url {url!r}: only sqlite:/// and postgresql+psycopg:// are supported")

    @property
    def engine(self) -> Engine:
        """For tests and benchmarks (query counting); the inventory functions are the interface."""
        return self._engine

    @property
    def url_for_display(self) -> str:
        """The URL with any password masked, for logs and start-up messages."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision; a no-op when it is there already.

        On PostgreSQL the whole upgrade runs in one transaction under an advisory lock, so that API
        processes starting together migrate once and the others wait, then find nothing to do. On
        SQLite the write lock (BEGIN IMMEDIATE) does the same."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with translate_errors("migrating the database"), self._engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def current_revision(self) -> str | None:
        """The schema revision the database is at (None before the first migration)."""
        with translate_errors("reading the schema revision"), self._engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextlib.contextmanager
    def transaction(self, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on any error.

        ``readonly`` lets SQLite run it beside a writer instead of waiting for the write lock."""
        factory = self._read_sessions if readonly else self._sessions
        # SQLite lets one writer in at a time and makes the others poll in its busy handler, which is
        # unfair: a thread can wait seconds while others get in. Writers of this process queue on a
        # lock instead (FIFO-ish, no polling); busy_timeout still arbitrates between processes.
        gate = self._write_gate if not readonly and self.dialect == "sqlite" else contextlib.nullcontext()
        with gate, translate_errors("database transaction"), factory.begin() as session:
            yield session

    def lock(self, session: Session, key: int) -> None:
        """Serialise a critical section across processes until the transaction ends. SQLite needs
        nothing: a writing transaction there already holds the database's one write lock."""
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def dispose(self) -> None:
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url_for_display!r})"
