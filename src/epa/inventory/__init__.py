"""The inventory layer: EPA's database (SQLite or PostgreSQL) behind plain functions.

Every function takes a ``Database`` and domain values and returns frozen records; no SQLAlchemy
type crosses this package's boundary, and only this package imports SQLAlchemy and Alembic."""

from epa.inventory.aliases import create_alias, delete_alias, get_alias, known_aliases, list_aliases
from epa.inventory.db import Database
from epa.inventory.devices import get_device, list_devices, set_device_status
from epa.inventory.flavors import create_flavor, delete_flavor, get_flavor, list_flavors
from epa.inventory.hosts import (
    create_host,
    delete_host,
    get_host,
    list_hosts,
    rotate_agent_token,
    set_host_enabled,
    set_hypervisor,
)
from epa.inventory.records import DeviceRecord, HostRecord, Principal, ReportOutcome
from epa.inventory.report import apply_report
from epa.inventory.tokens import authenticate, create_admin_token, ensure_admin_token

__all__ = [
    "Database",
    "DeviceRecord",
    "HostRecord",
    "Principal",
    "ReportOutcome",
    "apply_report",
    "authenticate",
    "create_admin_token",
    "create_alias",
    "create_flavor",
    "create_host",
    "delete_alias",
    "delete_flavor",
    "delete_host",
    "ensure_admin_token",
    "get_alias",
    "get_device",
    "get_flavor",
    "get_host",
    "known_aliases",
    "list_aliases",
    "list_devices",
    "list_flavors",
    "list_hosts",
    "rotate_agent_token",
    "set_device_status",
    "set_host_enabled",
    "set_hypervisor",
]
