"""The human-readable device table: each PF's VFs grouped (indented) under it."""

from __future__ import annotations

from collections.abc import Sequence

from epa.domain.address import PciAddress
from epa.domain.device import DevType
from epa.domain.device_spec import ClassifiedDevice

HEADERS = (
    "ADDRESS",
    "VENDOR:PRODUCT",
    "NAME",
    "TYPE",
    "PARENT",
    "NUMA",
    "DRIVER",
    "IFACE",
    "ASSIGNABLE",
    "TAGS",
)
_NAME_WIDTH = 44


def _name(c: ClassifiedDevice) -> str:
    d = c.device
    text = " ".join(x for x in (d.vendor_name, d.product_name) if x) or "(unknown)"
    return text if len(text) <= _NAME_WIDTH else text[: _NAME_WIDTH - 1] + "…"


def _row(c: ClassifiedDevice, indent: str) -> tuple[str, ...]:
    d = c.device
    return (
        indent + str(d.address),
        f"{d.vendor_id}:{d.product_id}",
        _name(c),
        d.dev_type.value,
        str(d.parent_addr) if d.parent_addr else "-",
        "-" if d.numa_node is None else str(d.numa_node),
        d.driver or "-",
        d.netdev or "-",
        "yes" if c.assignable else "no",
        ",".join(f"{k}={v}" for k, v in sorted(c.tags.items())) or "-",
    )


def ordered_rows(classified: Sequence[ClassifiedDevice]) -> list[tuple[str, ...]]:
    """Rows in address order, with every VF right after its PF (a VF whose PF is absent stands alone)."""
    present = {c.device.address for c in classified}
    vfs: dict[PciAddress, list[ClassifiedDevice]] = {}
    for c in classified:
        if c.device.parent_addr is not None and c.device.parent_addr in present:
            vfs.setdefault(c.device.parent_addr, []).append(c)
    rows = []
    for c in sorted(classified, key=lambda c: c.device.address):
        if c.device.parent_addr is not None and c.device.parent_addr in present:
            continue
        rows.append(_row(c, ""))
        if c.device.dev_type is DevType.PF:
            children = sorted(vfs.get(c.device.address, []), key=lambda v: v.device.address)
            rows.extend(_row(v, "  └ ") for v in children)
    return rows


def render_table(classified: Sequence[ClassifiedDevice], source: str) -> str:
    rows = ordered_rows(classified)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(HEADERS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    pfs = sum(1 for c in classified if c.device.dev_type is DevType.PF)
    vf_count = sum(1 for c in classified if c.device.dev_type is DevType.VF)
    assignable = sum(1 for c in classified if c.assignable)
    lines.append("")
    lines.append(f"{len(classified)} functions ({pfs} PFs, {vf_count} VFs), {assignable} assignable; source {source}")
    return "\n".join(lines)
