"""Inventory report bodies built the way an agent builds them: scan a simulated /sys, apply a device_spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from epa.discovery.sysfs import scan_sysfs
from epa.domain.device_spec import classify, parse_device_specs

NFV_SPECS = [
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"address": "0000:18:00.0", "physical_network": "physnet1"}',
    '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet2", "trusted": "yes"}',
    '{"vendor_id": "10de"}',
]


def report_body(sysfs_root: Path, generation: int, specs: list[str] | None = None) -> dict[str, Any]:
    scan = scan_sysfs(sysfs_root)
    classified, _ = classify(parse_device_specs(NFV_SPECS if specs is None else specs), scan.devices)
    devices = []
    for c in classified:
        d: dict[str, Any] = c.device.to_json()
        d["assignable"] = c.assignable
        d["tags"] = c.tags
        devices.append(d)
    cells = [
        {"node": 0, "socket": 0, "cpus": list(range(4)), "memory_mb": 8192},
        {"node": 1, "socket": 1, "cpus": list(range(4, 8)), "memory_mb": 8192},
    ]
    return {"generation": generation, "numa_cells": cells, "devices": devices}
