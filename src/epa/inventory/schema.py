"""The tables of the inventory database, as typed SQLAlchemy models.

The migrations in ``migrations/versions`` create exactly these tables (a test compares them); the
models are what the queries are written against. Nothing outside ``epa.inventory`` sees them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from epa.domain.server import ServerStatus
from epa.domain.status import DeviceStatus

# Stable constraint names, so that later migrations (and SQLite batch mode) can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUS_CHECK = "status IN (" + ", ".join(f"'{s.value}'" for s in DeviceStatus) + ")"
SERVER_STATUS_CHECK = "status IN (" + ", ".join(f"'{s.value}'" for s in ServerStatus) + ")"
KIND_CHECK = "(kind = 'admin' AND host_id IS NULL) OR (kind = 'agent' AND host_id IS NOT NULL)"


def name_type(length: int) -> TypeEngine[str]:
    """A string that sorts bytewise on both backends: PostgreSQL's default collation is the locale's
    (which ignores punctuation and case at first), SQLite's is BINARY; "C" makes them agree, so
    that listings and keyset pagination order the same everywhere."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def json_type() -> TypeEngine[Any]:
    return JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out. SQLite keeps no zone, PostgreSQL returns the
    session's; both come back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the inventory stores UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# The change feed's order on PostgreSQL (SQLite, whose writers take turns, counts in ChangeCounterRow).
HOST_CHANGE_SEQ = Sequence("host_change_seq", metadata=Base.metadata)


class HostRow(Base):
    __tablename__ = "hosts"
    __table_args__ = (Index(None, "change_seq"), Index(None, "change_xid"), Index(None, "last_report_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(name_type(63), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    last_report_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Bumped by every claim and release (reports bump ``generation``): API processes compare both to
    # tell that their in-memory view of the host is stale.
    claim_generation: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # What the agent last said of its hypervisor (reachable, why not, the domain type it uses); None
    # until an agent said anything. Not inventory: it touches neither generation.
    hypervisor: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)
    # What the agent last said its image cache holds: {"parts": [{"sha256", "size"}, ...], "reported_at"};
    # None until it said. The scheduler prefers hosts that hold a server's image (on the change feed).
    images: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)
    # The change feed (inventory.changes): the number of the last change that matters to scheduling
    # (report, claim, release, enable/disable), and on PostgreSQL the id of the transaction that made it.
    # A heartbeat moves ``last_report_at`` only.
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    change_xid: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class HostTombstoneRow(Base):
    """A deleted host, as the change feed reports it (hosts are deleted seldom; the rows are small)."""

    __tablename__ = "host_tombstones"
    __table_args__ = (Index(None, "change_seq"), Index(None, "change_xid"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(name_type(63))
    change_seq: Mapped[int] = mapped_column(BigInteger)
    change_xid: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ChangeCounterRow(Base):
    """SQLite's stand-in for ``host_change_seq``: one row, incremented in the writing transaction
    (SQLite lets one writer in at a time, so numbers are taken in commit order). Unused on PostgreSQL."""

    __tablename__ = "change_counter"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class NumaCellRow(Base):
    __tablename__ = "numa_cells"
    __table_args__ = (UniqueConstraint("host_id", "node"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    node: Mapped[int] = mapped_column(Integer)
    socket: Mapped[int | None] = mapped_column(Integer)
    cpus: Mapped[list[int]] = mapped_column(json_type())
    memory_mb: Mapped[int] = mapped_column(Integer)


class DeviceRow(Base):
    """One PCI function of a host. Lists (netdevs, vf_addrs, pcie_path) and tags are JSON; addresses
    are canonical ``dddd:bb:ss.f`` text, which sorts like ``PciAddress``."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("host_id", "address"),
        CheckConstraint(STATUS_CHECK, name="status"),
        Index(None, "status", "host_id"),
        Index(None, "host_id", "parent_addr"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(name_type(12))
    vendor_id: Mapped[str] = mapped_column(String(4))
    product_id: Mapped[str] = mapped_column(String(4))
    class_code: Mapped[str] = mapped_column(String(6))
    dev_type: Mapped[str] = mapped_column(String(8))
    parent_addr: Mapped[str | None] = mapped_column(name_type(12))
    subsystem_vendor_id: Mapped[str | None] = mapped_column(String(4))
    subsystem_product_id: Mapped[str | None] = mapped_column(String(4))
    numa_node: Mapped[int | None] = mapped_column(Integer)
    iommu_group: Mapped[int | None] = mapped_column(Integer)
    driver: Mapped[str | None] = mapped_column(String(256))
    netdevs: Mapped[list[dict[str, Any]]] = mapped_column(json_type())
    sriov_totalvfs: Mapped[int | None] = mapped_column(Integer)
    sriov_numvfs: Mapped[int | None] = mapped_column(Integer)
    vf_addrs: Mapped[list[str]] = mapped_column(json_type())
    pci_root: Mapped[str | None] = mapped_column(String(256))
    pcie_path: Mapped[list[str]] = mapped_column(json_type())
    vendor_name: Mapped[str | None] = mapped_column(String(256))
    product_name: Mapped[str | None] = mapped_column(String(256))
    assignable: Mapped[bool] = mapped_column(Boolean)
    tags: Mapped[dict[str, str]] = mapped_column(json_type())
    status: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(64))
    vanished: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AliasRow(Base):
    __tablename__ = "aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(name_type(256), unique=True)
    specs: Mapped[list[dict[str, Any]]] = mapped_column(json_type())
    numa_policy: Mapped[str] = mapped_column(String(16))
    device_type: Mapped[str | None] = mapped_column(String(8))


class FlavorRow(Base):
    __tablename__ = "flavors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(name_type(63), unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    pci_alias: Mapped[str] = mapped_column(Text)
    numa_policy: Mapped[str | None] = mapped_column(String(16))
    numa_nodes: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The image a server of this flavor boots when its create names none (checked then, not here).
    image: Mapped[str | None] = mapped_column(name_type(63), nullable=True)
    # The flavor's pci_group text (epa.domain.pci_group); empty: no topology constraints.
    pci_group: Mapped[str] = mapped_column(Text, default="", server_default="")


class FlavorAliasRow(Base):
    """Which aliases a flavor names: lets the database refuse deleting an alias a flavor uses
    (RESTRICT), even when the delete races with the flavor's creation."""

    __tablename__ = "flavor_aliases"
    __table_args__ = (Index(None, "alias_id"),)

    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True)
    alias_id: Mapped[int] = mapped_column(ForeignKey("aliases.id", ondelete="RESTRICT"), primary_key=True)


class TokenRow(Base):
    __tablename__ = "tokens"
    __table_args__ = (
        CheckConstraint(KIND_CHECK, name="kind"),
        Index(None, "host_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ServerRow(Base):
    """A VM. ``flavor`` is a snapshot of the flavor at creation, ``ports`` the ports' JSON;
    ``host_nodes[i]`` is the host NUMA node of guest node i. Kept after deletion (status ``deleted``)."""

    __tablename__ = "servers"
    __table_args__ = (
        CheckConstraint(SERVER_STATUS_CHECK, name="status"),
        Index(None, "host_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(name_type(63))
    flavor: Mapped[dict[str, Any]] = mapped_column(json_type())
    ports: Mapped[list[dict[str, Any]]] = mapped_column(json_type())
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"))
    host_nodes: Mapped[list[int]] = mapped_column(json_type())
    domain_uuid: Mapped[str | None] = mapped_column(String(36))
    domain_state: Mapped[str | None] = mapped_column(String(32))
    domain_xml: Mapped[str | None] = mapped_column(Text)
    # The client's Idempotency-Key: a create sent again with it finds this server instead of making another.
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # What it boots: {"image": a snapshot of the image (what the agent fetches and verifies), "ssh_keys",
    # "user_data"}; and a reference that keeps the image from being deleted while a live server uses it
    # (cleared once the server is deleted).
    boot: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)
    image_id: Mapped[str | None] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), nullable=True)


class ServerCellRow(Base):
    """The CPUs and memory a server holds on one host NUMA node (deleted on release)."""

    __tablename__ = "server_cells"
    __table_args__ = (Index(None, "host_id", "node"),)

    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True)
    node: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"))
    cpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)


class ClaimRow(Base):
    """One device held by one server. The unique ``device_id`` is the backstop: whatever the code
    does, the database refuses a device in two claims."""

    __tablename__ = "claims"
    __table_args__ = (Index(None, "server_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="RESTRICT"), unique=True)
    request_index: Mapped[int] = mapped_column(Integer)
    request_label: Mapped[str] = mapped_column(Text)
    # The index of the server's port the device backs; None for a flavor alias's device.
    port_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ImageRow(Base):
    """An image servers boot from; ``queued`` until each of its parts is uploaded whole."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(name_type(63), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8))
    cmdline: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ImagePartRow(Base):
    """One uploaded file of an image (``disk``; or ``kernel`` and ``initrd``), written once its last
    chunk is stored: a part without a row here is an upload in progress or one that failed."""

    __tablename__ = "image_parts"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[str] = mapped_column(String(8), primary_key=True)
    format: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class ImageChunkRow(Base):
    """``seq``-th fixed-size piece of a part's bytes: every API process serves an image from the one
    database, and no row is larger than a chunk, whatever the image's size."""

    __tablename__ = "image_chunks"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[str] = mapped_column(String(8), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ServerConsoleRow(Base):
    """The end of a server's serial console as its agent last sent it (escaped, bounded)."""

    __tablename__ = "server_consoles"

    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
