"""Images: their parts and the fixed-size chunks of their bytes; a server names the image it boots;
the end of each server's serial console.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", _name(63), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("cmdline", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        sa.UniqueConstraint("name", name="uq_images_name"),
    )
    op.create_table(
        "image_parts",
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("part", sa.String(8), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("virtual_size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_image_parts_image_id_images", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("image_id", "part", name="pk_image_parts"),
    )
    op.create_table(
        "image_chunks",
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("part", sa.String(8), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_image_chunks_image_id_images", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("image_id", "part", "seq", name="pk_image_chunks"),
    )
    op.create_table(
        "server_consoles",
        sa.Column("server_id", sa.String(36), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name="fk_server_consoles_server_id_servers", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("server_id", name="pk_server_consoles"),
    )
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("boot", _json(), nullable=True))
        batch.add_column(sa.Column("image_id", sa.String(36), nullable=True))
        batch.create_foreign_key("fk_servers_image_id_images", "images", ["image_id"], ["id"], ondelete="RESTRICT")


def downgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.drop_constraint("fk_servers_image_id_images", type_="foreignkey")
        batch.drop_column("image_id")
        batch.drop_column("boot")
    op.drop_table("server_consoles")
    op.drop_table("image_chunks")
    op.drop_table("image_parts")
    op.drop_table("images")
