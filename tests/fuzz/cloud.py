"""A seeded cloud for fuzzing the API: one SQLite template database, restored before every request.

Seeding goes through the API (a host that reported an inventory, an alias, a flavor, a server), so the
fuzzed paths have real things to hit; restoring a copy of the file keeps every example independent."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    path: Path
    template: Path
    report: dict[str, Any]

    def restore(self) -> None:
        """Put the seeded database back (the engine reconnects lazily to the copied file)."""
        self.db.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.path)

    def fingerprint(self) -> dict[str, str]:
        """Row count and content hash of every table (alembic's excepted)."""
        out: dict[str, str] = {}
        with self.db.engine.connect() as connection:
            tables = sqlalchemy.inspect(connection).get_table_names()
            for table in sorted(t for t in tables if t != "alembic_version"):
                rows = connection.exec_driver_sql(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 - names from the schema
                digest = hashlib.sha256(repr(sorted(repr(tuple(r)) for r in rows)).encode()).hexdigest()[:16]
                out[table] = f"{len(rows)}:{digest}"
        return out

    def real_path_parameters(self, path: str) -> dict[str, Any]:
        """Path parameters that name something that exists, for the path template ``path``."""
        if path.startswith("/v1/aliases/"):
            return {"name": self.alias}
        if path.startswith("/v1/flavors/"):
            return {"name": self.flavor}
        return {"name": self.host, "address": self.address, "server_id": self.server}


@contextlib.contextmanager
def seeded(root: Path) -> Iterator[Cloud]:
    """The seeded cloud under ``root``, its client open."""
    path = root / "db" / "epa.sqlite"
    db = Database.connect(f"sqlite:///{path}")
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
        server = call("POST", "/v1/servers", {"name": "vnf-1", "flavor": "vnf.small"}, 201)
        assert server["status"] == "scheduled", server
        db.dispose()
        # The last connection closed checkpoints the WAL into the file: the file alone is the database.
        assert not path.with_name(path.name + "-wal").exists()
        template = root / "template.sqlite"
        shutil.copyfile(path, template)
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
            path=path,
            template=template,
            report=report,
        )
    db.dispose()
