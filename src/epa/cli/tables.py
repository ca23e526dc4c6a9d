"""Plain-text tables and key/value blocks for the inventory commands (``--json`` prints the API's JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

from epa.domain.host import format_cpulist

_CELL_MAX = 48


def cell(value: Any) -> str:
    """A JSON value as one table cell: ``-`` for null/empty, lists joined with commas."""
    if value is None or value in ("", [], {}):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={cell(v)}" for k, v in sorted(value.items()))
    text = str(value)
    return text if len(text) <= _CELL_MAX else text[: _CELL_MAX - 1] + "…"


def render(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; trailing spaces trimmed."""
    body = [list(r) for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    items = list(pairs)
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{(k + ':').ljust(width + 1)} {cell(v)}" for k, v in items)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def counts(device_counts: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(device_counts.items()) if v) or "-"


# -- the tables of each resource ---------------------------------------------------------------

HOST_HEADERS = ("NAME", "ENABLED", "GENERATION", "LAST REPORT", "NUMA", "DEVICES", "STATUS COUNTS")


def host_row(h: Mapping[str, Any]) -> list[str]:
    return [
        cell(h.get("name")),
        cell(h.get("enabled")),
        cell(h.get("generation")),
        cell(h.get("last_report_at")),
        str(len(h.get("numa_cells") or [])),
        cell(h.get("device_total")),
        counts(h.get("device_counts") or {}),
    ]


def _image_cache(images: Mapping[str, Any] | None) -> str:
    """``2 parts, 18.5 MiB: cirros, demo`` (the images the parts belong to), or that nothing was said."""
    if images is None:
        return "not reported"
    parts = images.get("parts") or []
    size = sum(int(p.get("size") or 0) for p in parts)
    names = sorted({n for p in parts for n in p.get("images") or []})
    return f"{len(parts)} parts, {size / 2**20:.1f} MiB" + (f": {', '.join(names)}" if names else "")


def host_details(h: Mapping[str, Any]) -> str:
    head = key_values(
        [
            ("name", h.get("name")),
            ("enabled", h.get("enabled")),
            ("generation", h.get("generation")),
            ("last report", h.get("last_report_at")),
            ("devices", h.get("device_total")),
            ("status counts", counts(h.get("device_counts") or {})),
            ("image cache", _image_cache(h.get("images"))),
        ]
    )
    cells = [
        [
            cell(c.get("node")),
            cell(c.get("socket")),
            (format_cpulist(c.get("cpus") or []) or "-"),
            cell(c.get("memory_mb")),
        ]
        for c in h.get("numa_cells") or []
    ]
    table = render(("NODE", "SOCKET", "CPUS", "MEMORY MB"), cells) if cells else "no NUMA cells reported yet"
    return f"{head}\n\n{table}"


DEVICE_HEADERS = (
    "HOST",
    "ADDRESS",
    "VENDOR:PRODUCT",
    "TYPE",
    "PARENT",
    "NUMA",
    "DRIVER",
    "STATUS",
    "OWNER",
    "ASSIGNABLE",
    "TAGS",
)


def device_row(d: Mapping[str, Any]) -> list[str]:
    status = cell(d.get("status")) + (" (vanished)" if d.get("vanished") else "")
    return [
        cell(d.get("host")),
        cell(d.get("address")),
        f"{d.get('vendor_id')}:{d.get('product_id')}",
        cell(d.get("dev_type")),
        cell(d.get("parent_addr")),
        cell(d.get("numa_node")),
        cell(d.get("driver")),
        status,
        cell(d.get("owner")),
        cell(d.get("assignable")),
        cell(d.get("tags")),
    ]


ALIAS_HEADERS = ("NAME", "DEVICE TYPE", "NUMA POLICY", "SPECS")


def alias_row(a: Mapping[str, Any]) -> list[str]:
    specs = "; ".join(" ".join(f"{k}={v}" for k, v in sorted(s.items()) if v is not None) for s in a.get("specs") or [])
    return [cell(a.get("name")), cell(a.get("device_type")), cell(a.get("numa_policy")), specs or "-"]


FLAVOR_HEADERS = ("NAME", "VCPUS", "MEMORY MB", "PCI", "NUMA POLICY", "NUMA NODES", "DISK GB")


def flavor_row(f: Mapping[str, Any]) -> list[str]:
    return [
        cell(f.get("name")),
        cell(f.get("vcpus")),
        cell(f.get("memory_mb")),
        cell(f.get("pci_passthrough:alias")),
        cell(f.get("numa_policy")),
        cell(f.get("numa_nodes")),
        cell(f.get("disk_gb")),
    ]
