"""A seeded cloud for fuzzing the API, on SQLite or PostgreSQL, put back as seeded before every request.

Seeding goes through the API (a host that reported an inventory, an alias, a flavor, a server), so the
fuzzed paths have real things to hit; restoring the seeded state keeps every example independent."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
import sqlalchemy
from fastapi import FastAPI
from fastapi.testclient import TestClient

from epa.api.app import create_app
from epa.api.errors import HTTP_CODES
from epa.errors import EpaError
from epa.inventory import Database
from epa.inventory.tokens import ensure_admin_token
from epa.simulate.hosts import nfv_host
from epa.simulate.sysfs_tree import render_sysfs
from support.reports import report_body


def _subclasses(cls: type[EpaError]) -> Iterator[type[EpaError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def stable_codes() -> frozenset[str]:
    """Every code an error answer may carry: the error classes' and the framework statuses' (app imported)."""
    return frozenset({c.code for c in _subclasses(EpaError)} | set(HTTP_CODES.values()))


class SeededState(Protocol):
    """How one backend puts the seeded database back and tells whether its content changed."""

    def put_back(self) -> None: ...

    def fingerprint(self) -> dict[str, str]:
        """Row count and content hash of every table (alembic's excepted)."""
        ...


class SqliteFile:
    """SQLite: the seeded database file, copied back (the engine reconnects lazily to the copied file)."""

    def __init__(self, db: Database, template: Path) -> None:
        assert db.engine.url.database is not None
        self.db, self.path, self.template = db, Path(db.engine.url.database), template
        db.dispose()
        # The last connection closed checkpoints the WAL into the file: the file alone is the database.
        assert not self.path.with_name(self.path.name + "-wal").exists()
        shutil.copyfile(self.path, template)

    def put_back(self) -> None:
        self.db.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.path)

    def fingerprint(self) -> dict[str, str]:
        out: dict[str, str] = {}
        with self.db.engine.connect() as connection:
            tables = sqlalchemy.inspect(connection).get_table_names()
            for table in sorted(t for t in tables if t != "alembic_version"):
                rows = connection.exec_driver_sql(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 - names from the schema
                digest = hashlib.sha256(repr(sorted(repr(tuple(r)) for r in rows)).encode()).hexdigest()[:16]
                out[table] = f"{len(rows)}:{digest}"
        return out


class PostgresTables:
    """PostgreSQL: every table's rows and every sequence's position, read once and written back.

    A database created from a template would be the whole state, but costs ~0.4 s per example. Rows
    travel as PostgreSQL's own JSON of them (``json_agg`` out, ``json_populate_recordset`` in), which
    round-trips every column type exactly in one statement per table. Sequences go back too, so that
    the ids handed out after a restore do not depend on the examples that came before. The fingerprint
    hashes each row's text form on the server (decoding the JSONB columns in Python took 20 ms)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        metadata = sqlalchemy.MetaData()
        # Table and sequence names in the SQL below come from the schema, not from input (S608).
        with db.engine.connect() as connection:
            metadata.reflect(connection)
            # Parents first: rows go back in this order and come out in the reverse one.
            self.tables = [t.name for t in metadata.sorted_tables if t.name != "alembic_version"]
            self.rows = {
                t: connection.exec_driver_sql(f"SELECT coalesce(json_agg(r), '[]')::text FROM \"{t}\" r").scalar_one()  # noqa: S608
                for t in self.tables
            }
            sequences = connection.exec_driver_sql(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
            ).scalars()
            self.sequences = [
                (f'"{name}"', *connection.exec_driver_sql(f'SELECT last_value, is_called FROM "{name}"').one())  # noqa: S608
                for name in sequences
            ]
        assert self.tables and self.sequences, "nothing to restore: is the database migrated?"
        self.digest_query = " UNION ALL ".join(
            f"SELECT '{t}', count(*), md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) FROM \"{t}\" r"  # noqa: S608
            for t in sorted(self.tables)
        )

    def put_back(self) -> None:
        with self.db.engine.begin() as connection:
            # psycopg's pipeline sends the statements without waiting for each answer: a third faster.
            pg = connection.connection.driver_connection
            assert isinstance(pg, psycopg.Connection)
            with pg.pipeline():
                for table in reversed(self.tables):
                    pg.execute(f'DELETE FROM "{table}"')  # noqa: S608
                for table in self.tables:
                    pg.execute(
                        f'INSERT INTO "{table}" SELECT * FROM json_populate_recordset(NULL::"{table}", %(rows)s)',  # noqa: S608
                        {"rows": self.rows[table]},
                    )
                for name, last_value, is_called in self.sequences:
                    pg.execute(
                        "SELECT setval(%(name)s, %(value)s, %(called)s)",
                        {"name": name, "value": last_value, "called": is_called},
                    )

    def fingerprint(self) -> dict[str, str]:
        with self.db.engine.connect() as connection:
            return {t: f"{n}:{d[:16]}" for t, n, d in connection.exec_driver_sql(self.digest_query)}


@dataclass
class Cloud:
    """The seeded application and what lives in it."""

    db: Database
    app: FastAPI
    client: TestClient
    admin: str
    agent: str
    host: str
    address: str
    alias: str
    flavor: str
    server: str
    report: dict[str, Any]
    state: SeededState

    def restore(self) -> None:
        """Put the seeded database back."""
        self.state.put_back()

    def fingerprint(self) -> dict[str, str]:
        """Row count and content hash of every table (alembic's excepted)."""
        return self.state.fingerprint()

    def real_path_parameters(self, path: str) -> dict[str, Any]:
        """Path parameters that name something that exists, for the path template ``path``."""
        if path.startswith("/v1/aliases/"):
            return {"name": self.alias}
        if path.startswith("/v1/flavors/"):
            return {"name": self.flavor}
        if path.startswith("/v1/images/"):
            # A queued image: a garbage upload to it must be refused and leave no chunk behind.
            return {"name": "img", "part": "disk"}
        return {"name": self.host, "address": self.address, "server_id": self.server}


@contextlib.contextmanager
def seeded(root: Path, url: str) -> Iterator[Cloud]:
    """The cloud seeded in the (empty) database at ``url``, with files under ``root``; its client open."""
    db = Database.connect(url)
    db.migrate()
    admin = ensure_admin_token(db)
    assert admin is not None
    app = create_app(db)
    with TestClient(app, raise_server_exceptions=False) as client:

        def call(method: str, url: str, json: Any, expect: int, token: str = admin) -> Any:
            resp = client.request(method, url, json=json, headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == expect, f"seeding {method} {url}: {resp.status_code} {resp.text}"
            return resp.json()

        agent = call("POST", "/v1/hosts", {"name": "nfv-1"}, 201)["agent_token"]
        report = report_body(render_sysfs(nfv_host(), root / "sys"), 0)
        report["generation"] = call("PUT", "/v1/hosts/nfv-1/inventory", report, 200, agent)["generation"]
        alias = {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"}
        call("POST", "/v1/aliases", alias, 201)
        flavor = {"name": "vnf.small", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": "qat:1"}
        call("POST", "/v1/flavors", flavor, 201)
        call("POST", "/v1/images", {"name": "img"}, 201)
        server = call("POST", "/v1/servers", {"name": "vnf-1", "flavor": "vnf.small"}, 201)
        assert server["status"] == "scheduled", server
        state: SeededState = SqliteFile(db, root / "template.sqlite") if db.dialect == "sqlite" else PostgresTables(db)
        yield Cloud(
            db=db,
            app=app,
            client=client,
            admin=admin,
            agent=agent,
            host="nfv-1",
            address=server["devices"][0]["address"],
            alias="qat",
            flavor="vnf.small",
            server=server["id"],
            report=report,
            state=state,
        )
    db.dispose()
