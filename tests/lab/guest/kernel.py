"""What the lab guest's kernel says about its PCI functions, processes and VFs, read the way an operator
would check it (sysfs, /proc, ``ip -j link``), and the lab fixture's own set-up of the emulated hardware."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from record import say, sh

PCI = Path("/sys/bus/pci/devices")
IGB_PF = ("0x8086", "0x10c9")
NVME = ("0x1b36", "0x0010")
E1000 = ("0x8086", "0x100e")


def _read(path: Path) -> str:
    return path.read_text().strip()


def functions(vendor_device: tuple[str, str]) -> list[str]:
    """Addresses of the functions with this vendor:device id, sorted."""
    return sorted(d.name for d in PCI.iterdir() if (_read(d / "vendor"), _read(d / "device")) == vendor_device)


def sriov_pf(vendor_device: tuple[str, str]) -> str:
    pfs = [a for a in functions(vendor_device) if (PCI / a / "sriov_totalvfs").exists()]
    if len(pfs) != 1:
        raise RuntimeError(f"expected one SR-IOV PF {vendor_device}, found {pfs}")
    return pfs[0]


def vfs(pf: str) -> list[str]:
    links = sorted((PCI / pf).glob("virtfn*"), key=lambda p: int(p.name[6:]))
    return [os.readlink(link).rsplit("/", 1)[-1] for link in links]


def driver(address: str) -> str | None:
    link = PCI / address / "driver"
    return os.readlink(link).rsplit("/", 1)[-1] if link.exists() else None


def describe(address: str) -> dict[str, Any]:
    """One function as the kernel has it: driver, IOMMU group, NUMA node, ids."""
    d = PCI / address
    group = d / "iommu_group"
    return {
        "address": address,
        "driver": driver(address),
        "iommu_group": int(os.readlink(group).rsplit("/", 1)[-1]) if group.exists() else None,
        "numa_node": int(_read(d / "numa_node")),
        "vendor_device": f"{_read(d / 'vendor')[2:]}:{_read(d / 'device')[2:]}",
    }


def netdev(address: str) -> str:
    names = sorted(p.name for p in (PCI / address / "net").iterdir())
    return names[0]


def vfinfo(pf_netdev: str) -> list[dict[str, Any]]:
    """The PF's VFs as the driver reports them over netlink (``ip -j link show``'s vfinfo_list)."""
    shown = json.loads(sh("ip", "-j", "link", "show", pf_netdev))
    return list(shown[0].get("vfinfo_list", []))


def node_cpus(node: int) -> list[int]:
    return cpulist(_read(Path(f"/sys/devices/system/node/node{node}/cpulist")))


def cpulist(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def qemu_pid(domain: str) -> int | None:
    """The QEMU process running libvirt domain ``domain`` (its command line names it ``guest=NAME``)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(f"guest={domain},".encode()) or a == f"guest={domain}".encode() for a in args):
            return int(proc.name)
    return None


def vfio_fds(pid: int) -> list[str]:
    """The /dev/vfio/* files process ``pid`` holds open."""
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("/dev/vfio/"):
            out.add(target)
    return sorted(out)


def threads(pid: int) -> list[dict[str, Any]]:
    """Each thread of ``pid``: its name, the CPUs it may run on, the memory nodes it may allocate from."""
    out = []
    for task in sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda p: int(p.name)):
        status = dict(line.split(":\t", 1) for line in (task / "status").read_text().splitlines() if ":\t" in line)
        out.append(
            {
                "tid": int(task.name),
                "comm": _read(task / "comm"),
                "cpus": cpulist(status["Cpus_allowed_list"].strip()),
                "mems": cpulist(status["Mems_allowed_list"].strip()),
            }
        )
    return out


def memory_nodes(pid: int) -> dict[str, int]:
    """Pages of ``pid`` per NUMA node (``/proc/PID/numa_maps``'s N<node>= counts, summed)."""
    totals: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/numa_maps").read_text().splitlines():
        for node, pages in re.findall(r"\bN(\d+)=(\d+)", line):
            totals[node] = totals.get(node, 0) + int(pages)
    return totals


# --- the lab fixture's set-up: not EPA's business (a real host's firmware and driver do this) -------------


def load_modules() -> None:
    for module in ("igb", "igbvf", "nvme", "e1000", "vfio-pci", "vfio_iommu_type1"):
        sh("modprobe", module)


def nvme_give_vfs_resources(pf: str, count: int) -> list[int]:
    """QEMU's SR-IOV NVMe starts with every flexible queue on the primary controller: move them to the
    first ``count`` secondary controllers (their ids returned: online them once the VFs exist)."""
    ctrl = f"/dev/{sorted(p.name for p in (PCI / pf / 'nvme').iterdir())[0]}"
    caps = json.loads(sh("nvme", "primary-ctrl-caps", ctrl, "-o", "json"))
    primary = int(caps.get("cntlid", 0))
    secondaries = json.loads(sh("nvme", "list-secondary", ctrl, "-o", "json"))
    entries = secondaries.get("secondary-controllers", secondaries.get("sc-entry", []))
    ids = [int(e.get("secondary-controller-identifier", e.get("scid", 0))) for e in entries][:count]
    sh("nvme", "virt-mgmt", ctrl, "-c", str(primary), "-r", "1", "-a", "1", "-n", "0")
    sh("nvme", "virt-mgmt", ctrl, "-c", str(primary), "-r", "0", "-a", "1", "-n", "0")
    sh("nvme", "reset", ctrl)
    (PCI / pf / "reset").write_text("1")
    time.sleep(1)
    for scid in ids:
        sh("nvme", "virt-mgmt", ctrl, "-c", str(scid), "-r", "1", "-a", "8", "-n", "1")
        sh("nvme", "virt-mgmt", ctrl, "-c", str(scid), "-r", "0", "-a", "8", "-n", "2")
    say(f"nvme {pf}: secondary controllers {ids} have their queues")
    return ids


def nvme_online_vfs(pf: str, ids: list[int]) -> None:
    """Put the secondary controllers online (the VFs exist now) and let the nvme driver probe the VFs."""
    ctrl = f"/dev/{sorted(p.name for p in (PCI / pf / 'nvme').iterdir())[0]}"
    for scid in ids:
        sh("nvme", "virt-mgmt", ctrl, "-c", str(scid), "-r", "0", "-a", "9", "-n", "0")
    for vf in vfs(pf):
        Path("/sys/bus/pci/drivers_probe").write_text(vf)


QEMU_CONF = 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\nstdio_handler = "file"\n'


def start_libvirtd() -> None:
    """libvirtd, as on a real host (the guest's /etc, /var/lib and /var/log are overlays)."""
    Path("/etc/libvirt").mkdir(parents=True, exist_ok=True)
    Path("/etc/libvirt/qemu.conf").write_text(QEMU_CONF)
    for d in ("/var/lib/libvirt", "/var/log/libvirt", "/run/libvirt"):
        Path(d).mkdir(parents=True, exist_ok=True)
    sh("/usr/sbin/libvirtd", "-d")
    deadline = time.monotonic() + 120
    while not Path("/run/libvirt/libvirt-sock").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("libvirtd made no socket in 120s")
        time.sleep(0.5)
    sh("virsh", "-c", "qemu:///system", "version", timeout=120)
