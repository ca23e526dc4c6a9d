"""A flavor may say how big a server's root disk is (``disk_gb``, GiB; null: the image's virtual size) and
what its servers boot by default (``image``),
and a host remembers which image parts its agent's cache holds (``images``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("flavors") as batch:
        batch.add_column(sa.Column("disk_gb", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("image", sa.String(63).with_variant(sa.String(63, collation="C"), "postgresql"), nullable=True)
        )
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("images", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("images")
    with op.batch_alter_table("flavors") as batch:
        batch.drop_column("image")
        batch.drop_column("disk_gb")
