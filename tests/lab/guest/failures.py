"""The lab's failure modes, provoked for real after the main scenario (same boot, same ``epa serve``):
a driver refusing a VF setting, a VF held by another process, vfio-pci that cannot be loaded, an IOMMU
group not viable (managed and unmanaged), vfio-pci refusing a PF with VFs. Each must
leave the server ``error`` with a reason naming the device and the cause, its devices released and the
VF settings undone; recorded for tests/lab/test_failures.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kernel as k
from record import Record, say, sh, wait

HOLDER = """
import os, sys, time
fds = []
for vf in sys.argv[1:]:
    d = f"/sys/bus/pci/devices/{vf}"
    if os.path.exists(f"{d}/driver"):
        open(f"{d}/driver/unbind", "w").write(vf)
    open(f"{d}/driver_override", "w").write("vfio-pci")
    open("/sys/bus/pci/drivers_probe", "w").write(vf)
    group = os.readlink(f"{d}/iommu_group").rsplit("/", 1)[-1]
    fds.append(os.open(f"/dev/vfio/{group}", os.O_RDWR))
print("held", flush=True)
time.sleep(3600)
"""
NO_VFIO = Path("/etc/modprobe.d/epa-lab-no-vfio.conf")
# A plain PCI function (the second e1000 behind the PCIe-to-PCI bridge, the only one the device_spec names),
# and the NVMe PF itself, which has VFs: vfio-pci refuses such a PF.
FAILURE_ALIASES = [
    {"name": "e1000", "vendor_id": "8086", "product_id": "100e", "device_type": "type-PCI"},
    {"name": "nvme-pf", "vendor_id": "1b36", "product_id": "0010", "device_type": "type-PF"},
]


def _failed(rec: Record, epa: Any, key: str, created: dict[str, Any], nic_pf: str, deadline_s: float) -> None:
    done = wait(f"{created['name']} error", lambda: epa.server(created["id"], "error", "active"), deadline_s, 2)
    addresses = [d["address"] for d in created["devices"]]
    rec.fact(
        key,
        {
            "server": done,
            "claimed": addresses,
            "statuses": {a: epa.api.get_device("lab", a)["status"] for a in addresses},
            "kernel": {a: k.describe(a) for a in addresses},
            "vfinfo": k.vfinfo(k.netdev(nic_pf)),
            "nic_vfs": k.vfs(nic_pf),
        },
    )


def group_not_viable(rec: Record, epa: Any, key: str, nic_pf: str) -> None:
    """A server with the e1000 whose IOMMU group holds the other e1000, on its host driver."""
    created = epa.api.create_server(key.rsplit(".", 1)[-1].replace("_", "-"), "e1000")
    _failed(rec, epa, key, created, nic_pf, 600.0)
    group = k.PCI / k.functions(k.E1000)[0] / "iommu_group" / "devices"
    rec.fact(f"{key}.group", {p.name: k.describe(p.name) for p in sorted(group.iterdir())})


def _give_back(vfs: list[str]) -> None:
    """Undo the holder's binding: the VFs go back to whatever driver the kernel probes."""
    for vf in vfs:
        d = k.PCI / vf
        (d / "driver_override").write_text("\n")
        if (d / "driver").exists():
            (d / "driver" / "unbind").write_text(vf)
        Path("/sys/bus/pci/drivers_probe").write_text(vf)


def netlink(rec: Record, pf: str) -> None:
    """epa.hostnet's own VF configuration, sent to the real igb driver: a free VF set, read back, reset;
    then a VF the PF does not have (6 of 2), which the driver refuses (EINVAL)."""
    from epa.hostnet.vf import VfConfig, VfConfigError, apply_vf_config

    done = apply_vf_config(VfConfig(pf, 1, mac="52:54:00:00:0b:01", vlan=300, trusted=True, spoofchk=False))
    rec.fact("netlink.applied", {"done": done, "vf": next(v for v in k.vfinfo(pf) if v["vf"] == 1)})
    apply_vf_config(VfConfig.reset(pf, 1))
    rec.fact("netlink.reset", next(v for v in k.vfinfo(pf) if v["vf"] == 1))
    try:
        apply_vf_config(VfConfig(pf, 6, mac="52:54:00:00:0b:02"))
    except VfConfigError as e:
        rec.fact("netlink.refused", {"type": type(e).__name__, "message": str(e), "pf": pf})
    else:
        rec.fact("netlink.refused", {"type": None, "message": "the driver took it", "pf": pf})


def run_failures(rec: Record, epa: Any, nic_pf: str, nvme_pf: str, deadline_s: float) -> None:
    epa.api.create_flavor({"name": "net", "vcpus": 1, "memory_mb": 128})
    with rec.phase("failure: a multicast MAC on a port"):
        port = {"physnet": "physnet1", "vnic_type": "direct", "mac": "01:00:5e:00:00:01", "vlan": 7}
        created = epa.api.create_server("bad-mac", "net", [port])
        _failed(rec, epa, "failure.multicast", created, nic_pf, deadline_s)

    with rec.phase("netlink: the agent's VF configuration on the real igb"):
        netlink(rec, k.netdev(nic_pf))

    nvme_vfs = k.vfs(nvme_pf)
    with rec.phase("failure: the NVMe VFs are held by another process"):
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, *nvme_vfs], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None
            line = holder.stdout.readline().strip()
            if line != "held":
                raise RuntimeError(f"the holder did not hold the NVMe VFs: {line!r}")
            created = epa.api.create_server("busy", "lab")
            _failed(rec, epa, "failure.busy", created, nic_pf, deadline_s)
        finally:
            holder.kill()
            holder.wait(timeout=60)
            _give_back(nvme_vfs)

    with rec.phase("failure: vfio-pci cannot be loaded"):
        NO_VFIO.write_text("install vfio-pci /bin/false\ninstall vfio_pci /bin/false\n")
        try:
            sh("modprobe", "-r", "vfio-pci", check=False)
            rec.fact("failure.vfio_unloaded", not Path("/sys/bus/pci/drivers/vfio-pci").exists())
            created = epa.api.create_server("no-vfio", "lab")
            _failed(rec, epa, "failure.no_vfio", created, nic_pf, deadline_s)
        finally:
            NO_VFIO.unlink()
            sh("modprobe", "vfio-pci")

    with rec.phase("failure: IOMMU group not viable, unmanaged (the agent refuses)"):
        group_not_viable(rec, epa, "failure.group_unmanaged", nic_pf)

    with rec.phase("failure: vfio-pci refuses the NVMe PF (it has VFs)"):
        created = epa.api.create_server("pf-refused", "nvme-pf")
        _failed(rec, epa, "failure.pf_refused", created, nic_pf, deadline_s)
        rec.fact("failure.pf_refused.after", {"pf": k.describe(nvme_pf), "vfs": k.vfs(nvme_pf)})
    say("failures done")
