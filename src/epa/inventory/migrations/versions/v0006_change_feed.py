"""The change feed: hosts carry the number (and on PostgreSQL the transaction) of their last change that
matters to scheduling, deleted hosts leave a tombstone, and liveness is indexed for the timeout query.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.schema.CreateSequence(sa.Sequence("host_change_seq")))
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("change_seq", sa.BigInteger, nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("change_xid", sa.BigInteger, nullable=False, server_default=sa.text("0")))
        batch.create_index("ix_hosts_change_seq", ["change_seq"])
        batch.create_index("ix_hosts_change_xid", ["change_xid"])
        batch.create_index("ix_hosts_last_report_at", ["last_report_at"])
    op.create_table(
        "host_tombstones",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(63).with_variant(sa.String(63, collation="C"), "postgresql"), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("change_xid", sa.BigInteger, nullable=False),
        sa.Column("deleted_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_host_tombstones"),
    )
    op.create_index("ix_host_tombstones_change_seq", "host_tombstones", ["change_seq"])
    op.create_index("ix_host_tombstones_change_xid", "host_tombstones", ["change_xid"])
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_change_counter_one_row"),
        sa.PrimaryKeyConstraint("id", name="pk_change_counter"),
    )
    op.execute("INSERT INTO change_counter (id, value) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("change_counter")
    op.drop_index("ix_host_tombstones_change_xid", "host_tombstones")
    op.drop_index("ix_host_tombstones_change_seq", "host_tombstones")
    op.drop_table("host_tombstones")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_index("ix_hosts_last_report_at")
        batch.drop_index("ix_hosts_change_xid")
        batch.drop_index("ix_hosts_change_seq")
        batch.drop_column("change_xid")
        batch.drop_column("change_seq")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.schema.DropSequence(sa.Sequence("host_change_seq")))
