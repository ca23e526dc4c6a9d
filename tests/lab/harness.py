"""The SR-IOV lab: boots Debian's kernel under QEMU (TCG, no KVM needed) with virtme-ng, on the host's own
root filesystem, with an emulated IOMMU, an igb SR-IOV NIC (no NUMA node), an SR-IOV NVMe controller
behind a root complex on NUMA node 1 (see LAB.md) and two e1000 behind a PCIe-to-PCI bridge (one IOMMU
group for both). ``boot`` runs one command in the guest and brings its
files out through a shared directory; ``python -m tests.lab.harness shell`` gives a developer the same guest.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
GUEST_CPUS = 2
GUEST_MEMORY_MB = 2048  # split in two NUMA nodes of 1 GiB

# The hardware: each part is what decides a property the tests read (LAB.md).
QEMU_OPTS = (
    # caching-mode for VFIO behind an emulated IOMMU, intremap or QEMU refuses the igb VF's container
    "-device intel-iommu,caching-mode=on,intremap=on",
    # the igb PF (Intel 82576, 7 VFs) on a root port of the main root complex, which has no NUMA node:
    # a port's VF is placed under the legacy policy (NUMA-local where the device has a node), so a NIC
    # on node 0 could never serve a server pinned to node 1 by its NVMe VF (numa_policy required)
    "-device pcie-root-port,id=rp1,bus=pcie.0,chassis=9",
    "-netdev user,id=n1,restrict=on -device igb,bus=rp1,netdev=n1",
    # the SR-IOV NVMe controller (4 VFs, 1b36:0010) behind a root complex on NUMA node 1
    "-device pxb-pcie,id=pxb1,bus_nr=128,numa_node=1,bus=pcie.0",
    "-device pcie-root-port,id=rp2,bus=pxb1,chassis=10",
    "-device nvme-subsys,id=s0",
    "-device nvme,bus=rp2,serial=deadbeef,subsys=s0,sriov_max_vfs=4,sriov_vq_flexible=8,"
    "sriov_vi_flexible=4,max_ioqpairs=10,msix_qsize=8",
    # two plain PCI NICs (e1000, 8086:100e) behind a PCIe-to-PCI bridge: the IOMMU sees the bridge's
    # requester id for both, so they share one IOMMU group; one stays on its host driver, which makes the
    # group not viable for passing the other through
    "-device pcie-root-port,id=rp3,bus=pcie.0,chassis=11",
    "-device pcie-pci-bridge,id=pb1,bus=rp3",
    "-device e1000,bus=pb1,addr=1 -device e1000,bus=pb1,addr=2",
)


class LabUnavailable(RuntimeError):
    """A part the lab needs is not installed (``./dev`` installs them all)."""


@dataclass(frozen=True, slots=True)
class Boot:
    """One lab boot: the command's exit status and output, and how long the whole boot took."""

    returncode: int
    output: str
    elapsed_s: float


def kernel() -> Path:
    """The newest Debian kernel in /boot (``linux-image-amd64``); its modules are the host's /lib/modules."""
    found = sorted(Path("/boot").glob("vmlinuz-*"))
    if not found:
        raise LabUnavailable("no kernel in /boot: install linux-image-amd64 (./dev does)")
    return found[-1]


def _vng() -> str:
    vng = shutil.which("vng", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if vng is None:
        raise LabUnavailable(f"vng (virtme-ng) is not in {VENV_BIN}: run ./dev")
    return vng


def vng_args(rwdir: Path | None, command: str | None) -> list[str]:
    """The vng command line: TCG (KVM is unusable on the machines that run this), two NUMA nodes, the
    IOMMU on, writable overlays for what libvirt and the agent write, ``rwdir`` shared read-write."""
    half = GUEST_MEMORY_MB // 2
    args = [
        _vng(), "--run", str(kernel()), "--disable-kvm",
        "--cpus", str(GUEST_CPUS), "--memory", f"{GUEST_MEMORY_MB}M",
        "--numa", f"{half}M,cpus=0", "--numa", f"{half}M,cpus=1",
        "--append", "intel_iommu=on",
        "--overlay-rwdir=/etc", "--overlay-rwdir=/var/lib", "--overlay-rwdir=/var/log",
        f"--qemu-opts={' '.join(QEMU_OPTS)}",
    ]  # fmt: skip
    if rwdir is not None:
        args.append(f"--rwdir={rwdir}")
    if command is not None:
        args += ["--exec", command]
    return args


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # vng runs its helpers (virtme-run) from PATH
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def boot(command: str, rwdir: Path, timeout_s: float) -> Boot:
    """Boot the lab, run ``command`` (a shell line, as root, in the repository) and power off."""
    rwdir.mkdir(parents=True, exist_ok=True)
    line = f"cd {shlex.quote(str(REPO))} && {command}"
    started = time.monotonic()
    # vng runs virtme-run, which runs QEMU: a session of their own, so that a deadline (or the test run
    # being interrupted) ends all three, not vng alone.
    proc = subprocess.Popen(
        vng_args(rwdir, line),
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
            raise
        return Boot(124, f"{out}\n[lab] the boot ran past its {timeout_s:.0f}s deadline", time.monotonic() - started)
    return Boot(proc.returncode, out, time.monotonic() - started)


def guest_python(script: Path, *args: str) -> str:
    """A shell line running ``script`` with the repository's .venv Python (the guest sees the host's root)."""
    return shlex.join([str(VENV_BIN / "python"), str(script), *args])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev lab", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    shell = sub.add_parser("shell", help="an interactive root shell in the lab guest")
    shell.add_argument("--rwdir", type=Path, default=None, help="a host directory the guest may write")
    run = sub.add_parser("run", help="run one command in the lab guest")
    run.add_argument("command")
    run.add_argument("--rwdir", type=Path, default=Path("/tmp/epa-lab"))
    run.add_argument("--timeout", type=float, default=900.0)
    ns = parser.parse_args(argv)
    if ns.what == "shell":
        os.chdir(REPO)
        return subprocess.call(vng_args(ns.rwdir, None), env=_env())
    result = boot(ns.command, ns.rwdir, ns.timeout)
    sys.stdout.write(result.output)
    print(f"[lab] boot and command took {result.elapsed_s:.1f}s, exit {result.returncode}", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
