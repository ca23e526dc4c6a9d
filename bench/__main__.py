"""Run the benchmarks named on the command line (default: all)."""

from __future__ import annotations

import importlib
import sys

ALL = [
    "discovery_scan",
    "inventory_ingest",
    "device_listing",
    "scheduling_latency",
    "nova_pci_filter",
    "create_throughput",
    "image_transfer",
    "soak",
    "hostile_inputs",
    "fleet",
    "placement_packing",
]


def main(argv: list[str]) -> int:
    names = argv or ALL
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ALL)}", file=sys.stderr)
        return 2
    for name in names:
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
