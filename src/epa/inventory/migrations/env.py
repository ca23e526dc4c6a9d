"""Alembic environment: runs on the connection that ``Database.migrate()`` passes in (which already
holds the migration lock and an open transaction), never on a URL of its own."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from epa.inventory.schema import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run the EPA migrations through epa.inventory.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode lets later revisions use one code path.
    render_as_batch=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
