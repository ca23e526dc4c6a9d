"""A claim says which of its server's ports the device backs (``claims.port_index``; null: a flavor
alias's device), instead of readers deriving it from the flavor's alias count. Existing claims are filled
in that way, once: their request index less the number of aliases in the server's flavor copy.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def _aliases(flavor: Any) -> int:
    if isinstance(flavor, str):  # SQLite hands JSON back as text here
        flavor = json.loads(flavor)
    text = (flavor or {}).get("pci_passthrough:alias") or ""
    return len([item for item in str(text).split(",") if item.strip()])


def upgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.add_column(sa.Column("port_index", sa.Integer(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT c.id, c.request_index, s.flavor FROM claims c JOIN servers s ON s.id = c.server_id")
    ).all()
    for claim_id, index, flavor in rows:
        aliases = _aliases(flavor)
        if index >= aliases:
            connection.execute(
                sa.text("UPDATE claims SET port_index = :port WHERE id = :id"),
                {"port": index - aliases, "id": claim_id},
            )


def downgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.drop_column("port_index")
