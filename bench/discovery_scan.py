"""A full discovery scan of a host with 4 PFs x 128 VFs (520 functions), by each backend."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.report import emit, summary, timings
from epa.discovery.libvirt_nodedev import scan_libvirt
from epa.discovery.pci_ids import load_pci_ids
from epa.discovery.sysfs import scan_sysfs
from epa.simulate.hosts import sriov_scale_host
from epa.simulate.libvirt_node import render_node_xml
from epa.simulate.sysfs_tree import render_sysfs

RUNS = 30


def main() -> None:
    host = sriov_scale_host(pfs=4, vfs_per_pf=128)
    names = load_pci_ids()
    with tempfile.TemporaryDirectory() as tmp:
        root = render_sysfs(host, Path(tmp) / "sys")
        node = Path(tmp) / "node.xml"
        node.write_text(render_node_xml(host))
        uri = f"test://{node}"
        n = len(scan_sysfs(root).devices)
        assert n == len(host.functions) == 520, n
        rows = []
        for label, fn in (
            ("sysfs", lambda: scan_sysfs(root)),
            ("sysfs + pci.ids names", lambda: scan_sysfs(root, names)),
            ("libvirt test:/// (incl. connect)", lambda: scan_libvirt(uri)),
        ):
            s = summary(timings(fn, RUNS))
            rows.append({"backend": label, "functions": n, **s, "us_per_function": s["p50_ms"] * 1e3 / n})
        rows.append(
            {
                "backend": "pci.ids load",
                "functions": 0,
                **summary(timings(load_pci_ids, RUNS)),
                "us_per_function": 0.0,
            }
        )
    emit("discovery_scan", "Discovery: full scan of 4 PFs x 128 VFs (520 functions)", rows)


if __name__ == "__main__":
    main()
