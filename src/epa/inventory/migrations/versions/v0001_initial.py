"""Initial inventory schema: hosts, NUMA cells, devices, aliases, flavors, tokens.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out by hand (not from the models) so that it stays what it was when later models change.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

STATUSES = ("available", "claimed", "allocated", "unavailable", "removed")


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", _name(63), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("last_report_at", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
        sa.UniqueConstraint("name", name=op.f("uq_hosts_name")),
    )
    op.create_table(
        "numa_cells",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("host_id", sa.Integer, nullable=False),
        sa.Column("node", sa.Integer, nullable=False),
        sa.Column("socket", sa.Integer, nullable=True),
        sa.Column("cpus", _json(), nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_numa_cells")),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_numa_cells_host_id_hosts"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("host_id", "node", name=op.f("uq_numa_cells_host_id_node")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("host_id", sa.Integer, nullable=False),
        sa.Column("address", _name(12), nullable=False),
        sa.Column("vendor_id", sa.String(4), nullable=False),
        sa.Column("product_id", sa.String(4), nullable=False),
        sa.Column("class_code", sa.String(6), nullable=False),
        sa.Column("dev_type", sa.String(8), nullable=False),
        sa.Column("parent_addr", _name(12), nullable=True),
        sa.Column("subsystem_vendor_id", sa.String(4), nullable=True),
        sa.Column("subsystem_product_id", sa.String(4), nullable=True),
        sa.Column("numa_node", sa.Integer, nullable=True),
        sa.Column("iommu_group", sa.Integer, nullable=True),
        sa.Column("driver", sa.String(256), nullable=True),
        sa.Column("netdevs", _json(), nullable=False),
        sa.Column("sriov_totalvfs", sa.Integer, nullable=True),
        sa.Column("sriov_numvfs", sa.Integer, nullable=True),
        sa.Column("vf_addrs", _json(), nullable=False),
        sa.Column("pci_root", sa.String(256), nullable=True),
        sa.Column("pcie_path", _json(), nullable=False),
        sa.Column("vendor_name", sa.String(256), nullable=True),
        sa.Column("product_name", sa.String(256), nullable=True),
        sa.Column("assignable", sa.Boolean, nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("vanished", sa.Boolean, nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_devices_host_id_hosts"), ondelete="CASCADE"),
        sa.UniqueConstraint("host_id", "address", name=op.f("uq_devices_host_id_address")),
        sa.CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name=op.f("ck_devices_status")),
    )
    op.create_index(op.f("ix_devices_status_host_id"), "devices", ["status", "host_id"])
    op.create_index(op.f("ix_devices_host_id_parent_addr"), "devices", ["host_id", "parent_addr"])
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", _name(256), nullable=False),
        sa.Column("specs", _json(), nullable=False),
        sa.Column("numa_policy", sa.String(16), nullable=False),
        sa.Column("device_type", sa.String(8), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint("name", name=op.f("uq_aliases_name")),
    )
    op.create_table(
        "flavors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", _name(63), nullable=False),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("pci_alias", sa.Text, nullable=False),
        sa.Column("numa_policy", sa.String(16), nullable=True),
        sa.Column("numa_nodes", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flavors")),
        sa.UniqueConstraint("name", name=op.f("uq_flavors_name")),
    )
    op.create_table(
        "flavor_aliases",
        sa.Column("flavor_id", sa.Integer, nullable=False),
        sa.Column("alias_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("flavor_id", "alias_id", name=op.f("pk_flavor_aliases")),
        sa.ForeignKeyConstraint(
            ["flavor_id"],
            ["flavors.id"],
            name=op.f("fk_flavor_aliases_flavor_id_flavors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["alias_id"], ["aliases.id"], name=op.f("fk_flavor_aliases_alias_id_aliases"), ondelete="RESTRICT"
        ),
    )
    op.create_index(op.f("ix_flavor_aliases_alias_id"), "flavor_aliases", ["alias_id"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("host_id", sa.Integer, nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_tokens_host_id_hosts"), ondelete="CASCADE"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_tokens_token_hash")),
        sa.CheckConstraint(
            "(kind = 'admin' AND host_id IS NULL) OR (kind = 'agent' AND host_id IS NOT NULL)",
            name=op.f("ck_tokens_kind"),
        ),
    )
    op.create_index(op.f("ix_tokens_host_id"), "tokens", ["host_id"])


def downgrade() -> None:
    for table in ("tokens", "flavor_aliases", "flavors", "aliases", "devices", "numa_cells", "hosts"):
        op.drop_table(table)
