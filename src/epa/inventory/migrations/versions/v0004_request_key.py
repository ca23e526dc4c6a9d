"""A server remembers the Idempotency-Key of the create that made it, unique: a retried create finds it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("request_key", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_servers_request_key", ["request_key"])


def downgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.drop_constraint("uq_servers_request_key", type_="unique")
        batch.drop_column("request_key")
