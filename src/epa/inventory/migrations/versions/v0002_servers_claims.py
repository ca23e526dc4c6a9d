"""Servers, the CPU and memory they hold per host NUMA node, their device claims, and the hosts'
claim generation.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

Written out by hand (not from the models) so that it stays what it was when later models change.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

SERVER_STATUSES = ("scheduled", "building", "active", "stopped", "deleting", "deleted", "error")


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    # NOT NULL with a server default: SQLite can add it without rebuilding the table.
    op.add_column("hosts", sa.Column("claim_generation", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.create_table(
        "servers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", _name(63), nullable=False),
        sa.Column("flavor", _json(), nullable=False),
        sa.Column("ports", _json(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("host_id", sa.Integer, nullable=True),
        sa.Column("host_nodes", _json(), nullable=False),
        sa.Column("domain_uuid", sa.String(36), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_servers_host_id_hosts"), ondelete="RESTRICT"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in SERVER_STATUSES) + ")", name=op.f("ck_servers_status")
        ),
    )
    op.create_index(op.f("ix_servers_host_id_status"), "servers", ["host_id", "status"])
    op.create_table(
        "server_cells",
        sa.Column("server_id", sa.String(36), nullable=False),
        sa.Column("node", sa.Integer, nullable=False),
        sa.Column("host_id", sa.Integer, nullable=False),
        sa.Column("cpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("server_id", "node", name=op.f("pk_server_cells")),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_server_cells_server_id_servers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_server_cells_host_id_hosts"), ondelete="RESTRICT"
        ),
    )
    op.create_index(op.f("ix_server_cells_host_id_node"), "server_cells", ["host_id", "node"])
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("server_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("request_index", sa.Integer, nullable=False),
        sa.Column("request_label", sa.Text, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claims")),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_claims_server_id_servers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_claims_device_id_devices"), ondelete="RESTRICT"
        ),
        # The backstop: a device is in at most one claim, whatever the code above does.
        sa.UniqueConstraint("device_id", name=op.f("uq_claims_device_id")),
    )
    op.create_index(op.f("ix_claims_server_id"), "claims", ["server_id"])


def downgrade() -> None:
    for table in ("claims", "server_cells", "servers"):
        op.drop_table(table)
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("claim_generation")
