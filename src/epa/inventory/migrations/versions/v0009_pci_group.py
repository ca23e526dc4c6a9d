"""A flavor may say how its devices sit in the host's PCIe tree (``pci_group``; empty: no constraint).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("flavors") as batch:
        batch.add_column(sa.Column("pci_group", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("flavors") as batch:
        batch.drop_column("pci_group")
