"""The lab's main scenario, run inside the lab guest as root (one boot): the fixture's hardware set-up,
then EPA as an operator runs it — ``epa serve`` (SQLite), ``epa agent`` on the real /sys and libvirt —
creating a server with an NVMe VF (``numa_policy: required``) and a ``direct`` port, then deleting it,
first through a libvirt daemon (``qemu:///system``), then through the embedded driver (``qemu:///embed``),
where the server boots an image (an L2 guest: this kernel, a busybox initramfs with igbvf) whose console
shows the VF it was given and the port's MAC.
It records what the kernel and QEMU show at each step; ``tests/lab/test_scenario.py`` asserts on it.

Usage: python tests/lab/guest/scenario.py OUTDIR
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kernel as k
from failures import FAILURE_ALIASES, group_not_viable, run_failures
from record import Record, say, sh, wait

from epa.client import ApiClient
from epa.simulate.boot_image import make_boot_image

REPO = Path(__file__).resolve().parents[3]
PYTHON = str(REPO / ".venv" / "bin" / "python")
DEADLINE_S = 600.0  # a domain start under TCG inside TCG, with Python 10-20x slower than on a host
L2_DEADLINE_S = 900.0  # the L2 guest's boot: about 3 minutes quiet (LAB.md), far more on a loaded machine
IGBVF = "kernel/drivers/net/ethernet/intel/igbvf/igbvf.ko"
MAC = "52:54:00:1a:b0:01"
VLAN = 42
NIC_VFS = 2
# The agent's config: which devices are assignable, and the VFs it makes (the igb's, named by its netdev;
# the NVMe's, already made by the fixture that gave them their queues, named by vendor:product).
AGENT_CONFIG = """\
[pci]
device_spec = [
  {{ vendor_id = "8086", product_id = "10ca", physical_network = "physnet1", trusted = "yes" }},
  {{ vendor_id = "1b36", product_id = "0010" }},
  {{ address = "{e1000}" }},
]

[[sriov]]
pf = "{nic_netdev}"
num_vfs = {nic_vfs}
driver = "default"

[[sriov]]
pf = "1b36:0010"
num_vfs = 2
"""
NVME_ALIAS = {"name": "nvme", "vendor_id": "1b36", "product_id": "0010", "device_type": "type-VF",
              "numa_policy": "required"}  # fmt: skip


def agent_config(nic_pf: str) -> str:
    return AGENT_CONFIG.format(nic_netdev=k.netdev(nic_pf), nic_vfs=NIC_VFS, e1000=k.functions(k.E1000)[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Epa:
    """``epa serve`` and ``epa agent`` as processes, their logs in OUTDIR."""

    def __init__(self, out: Path, work: Path) -> None:
        self.out, self.work = out, work
        self.procs: list[subprocess.Popen[bytes]] = []
        self.agent: subprocess.Popen[bytes] | None = None
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._start("serve", ["serve", "--db", str(work / "epa.db"), "--port", str(port), "--data-dir", str(work)])
        self.api = ApiClient(self.url, wait("epa serve's admin token", self._admin_token, DEADLINE_S))
        wait("epa serve healthy", self._healthy, DEADLINE_S)

    def _admin_token(self) -> str | None:
        path = self.work / "admin-token"
        return path.read_text().strip() if path.exists() and path.read_text().strip() else None

    def _healthy(self) -> bool | None:
        try:
            self.api.health()
        except Exception:
            return None
        return True

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.out / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen([PYTHON, "-m", "epa", *args], stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_agent(self, name: str, token: str, hypervisor: str, config: Path, *extra: str) -> None:
        # The guest's home is the host's, read-only: seeds, consoles and the image cache go to the work dir.
        args = ["agent", "--server", self.url, "--token", token, "--host-name", "lab", "--interval", "2",
                "--hypervisor", hypervisor, "--config", str(config), "--state-dir", str(self.work / name),
                *extra]  # fmt: skip
        self.agent = self._start(name, args)

    def stop_agent(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            self.agent.wait(timeout=60)
        self.agent = None

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def server(self, server_id: str, *statuses: str) -> dict[str, Any] | None:
        server = self.api.get_server(server_id)
        return server if server["status"] in statuses else None


def observe_server(rec: Record, key: str, epa: Epa, server: dict[str, Any], nic_pf: str) -> None:
    """What the kernel and QEMU show of a server that is active."""
    domain = f"epa-{server['name']}-{server['id'][:8]}"
    pid = k.qemu_pid(domain)
    devices = {d["address"]: k.describe(d["address"]) for d in server["devices"]}
    rec.fact(
        key,
        {
            "server": server,
            "host": epa.api.get_host("lab"),
            "domain": domain,
            "qemu_pid": pid,
            "devices": devices,
            "vfio_fds": k.vfio_fds(pid) if pid else [],
            "threads": k.threads(pid) if pid else [],
            "memory_nodes": k.memory_nodes(pid) if pid else {},
            "vfinfo": k.vfinfo(k.netdev(nic_pf)),
            "nic_vfs": k.vfs(nic_pf),
            "live_xml": sh("virsh", "-c", "qemu:///system", "dumpxml", domain, check=False, timeout=120)
            if server.get("domain_xml") is not None and "embed" not in key
            else server.get("domain_xml"),
        },
    )


def observe_released(rec: Record, key: str, server: dict[str, Any], nic_pf: str, domain: str) -> None:
    rec.fact(
        key,
        {
            "server": server,
            "devices": {d["address"]: k.describe(d["address"]) for d in server["devices"]},
            "vfinfo": k.vfinfo(k.netdev(nic_pf)),
            "nic_vfs": k.vfs(nic_pf),
            "qemu_pid": k.qemu_pid(domain),
        },
    )


def run_server(rec: Record, epa: Epa, prefix: str, name: str, nic_pf: str, image: str | None = None) -> None:
    """Create a server with the NVMe VF and a direct port, observe it active, delete it, observe the host.
    With ``image``, the server boots it (an L2 guest) and its console, read through the API, is recorded."""
    port = {"physnet": "physnet1", "vnic_type": "direct", "mac": MAC, "vlan": VLAN, "trusted": True}
    with rec.phase(f"{prefix}: server active"):
        created = epa.api.create_server(name, "lab", [port], boot={"image": image} if image else None)
        rec.fact(f"{prefix}.created", created)
        done = wait(f"{name} active or error", lambda: epa.server(created["id"], "active", "error"), DEADLINE_S, 2)
    if done["status"] != "active":
        rec.fact(f"{prefix}.active", {"server": done})
        return
    if image is not None:
        with rec.phase(f"{prefix}: the L2 guest boots (TCG inside TCG)"):
            wait(f"{name}'s console says 'EPA boot done'", lambda: _booted(epa, created["id"]), L2_DEADLINE_S, 5)
            rec.fact(f"{prefix}.console", epa.api.get_console(created["id"], 300)["lines"])
    with rec.phase(f"{prefix}: observe"):
        observe_server(rec, f"{prefix}.active", epa, done, nic_pf)
    domain = f"epa-{name}-{created['id'][:8]}"
    with rec.phase(f"{prefix}: delete"):
        epa.api.delete_server(created["id"])
        gone = wait(f"{name} deleted", lambda: epa.server(created["id"], "deleted"), DEADLINE_S, 2)
        wait(f"{domain}'s QEMU gone", lambda: True if k.qemu_pid(domain) is None else None, 120)
        observe_released(rec, f"{prefix}.deleted", gone, nic_pf, domain)


def _booted(epa: Epa, server_id: str) -> bool | None:
    lines = epa.api.get_console(server_id, 300)["lines"]
    return True if any("EPA boot done" in line for line in lines) else None


def l2_image(epa: Epa, work: Path) -> str:
    """The L2 guest's image through EPA's own image support: this kernel and a busybox initramfs with
    igbvf, which prints the guest's PCI functions and its netdevs' MACs on the serial console."""
    image = make_boot_image(work / "l2-image", drivers=(IGBVF,))
    if image is None:
        raise RuntimeError("no kernel with igbvf under /boot and /lib/modules, or no /bin/busybox")
    epa.api.create_image("l2", kind="kernel", cmdline=image.cmdline)
    epa.api.upload_image_part("l2", "kernel", image.kernel)
    epa.api.upload_image_part("l2", "initrd", image.initrd)
    return "l2"


def _nic_vfs_present(epa: Epa) -> list[str]:
    return sorted(
        d["address"] for d in epa.api.list_devices(host="lab") if d["product_id"] == "10ca" and d["status"] != "removed"
    )


def rediscovery(rec: Record, epa: Epa, nic_pf: str, work: Path) -> None:
    """VFs made and removed behind the agent's back reach the inventory long before its periodic scan
    (600 s here): kernel uevents wake it. Its config has no [[sriov]] tables, or it would undo the change."""
    config = work / "agent-no-sriov.toml"
    whole = agent_config(nic_pf)
    config.write_text(whole.split("[[sriov]]", maxsplit=1)[0])
    epa.stop_agent()
    with rec.phase("rediscovery: agent starts"):
        epa.start_agent("agent-uevents", epa.api.rotate_token("lab"), "none", config, "--interval", "600")
        wait("the agent's first report", lambda: "reported" in (epa.out / "agent-uevents.log").read_text() or None,
             DEADLINE_S, 1)  # fmt: skip
    for count in (0, 3):
        with rec.phase(f"rediscovery: sriov_numvfs {count}"):
            started = time.monotonic()
            (k.PCI / nic_pf / "sriov_numvfs").write_text(str(count))
            wait(f"{count} igb VFs in the inventory", lambda c=count: len(_nic_vfs_present(epa)) == c or None, 300, 0.5)
            rec.fact(f"rediscovery.{count}", {"seconds": round(time.monotonic() - started, 1),
                                              "kernel": k.vfs(nic_pf), "inventory": _nic_vfs_present(epa)})  # fmt: skip
    rec.fact("rediscovery.log", (epa.out / "agent-uevents.log").read_text())


def _vfs_reported(epa: Epa, count: int) -> bool | None:
    vfs = [d for d in epa.api.list_devices(host="lab") if d["dev_type"] == "type-VF"]
    return True if len(vfs) >= count else None


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rec = Record(out / "scenario.json")
    work = Path("/tmp/epa-lab")
    work.mkdir(parents=True, exist_ok=True)
    with rec.phase("hardware"):
        k.load_modules()
        nic_pf, nvme_pf = k.sriov_pf(k.IGB_PF), k.sriov_pf(k.NVME)
        sh("ip", "link", "set", k.netdev(nic_pf), "up")
        scids = k.nvme_give_vfs_resources(nvme_pf, 2)
        # VFs without their queues online would fail nvme's probe: probe them once they are online
        (k.PCI / nvme_pf / "sriov_drivers_autoprobe").write_text("0")
        (k.PCI / nvme_pf / "sriov_numvfs").write_text("2")
        k.nvme_online_vfs(nvme_pf, scids)
        rec.fact("pfs", {"nic": k.describe(nic_pf), "nvme": k.describe(nvme_pf)})
        rec.fact("e1000", [k.describe(a) for a in k.functions(k.E1000)])
        rec.fact("nic_vfs_before_agent", k.vfs(nic_pf))
        rec.fact("kvm", Path("/dev/kvm").exists())
        rec.fact("node_cpus", {str(n): k.node_cpus(n) for n in (0, 1)})
    with rec.phase("libvirtd"):
        k.start_libvirtd()
    epa = None
    try:
        with rec.phase("epa serve"):
            epa = Epa(out, work)
            epa.api.create_alias(NVME_ALIAS)
            epa.api.create_flavor({"name": "lab", "vcpus": 1, "memory_mb": 256, "pci_passthrough:alias": "nvme:1"})
            for alias in FAILURE_ALIASES:
                epa.api.create_alias(alias)
                flavor = {"name": alias["name"], "vcpus": 1, "memory_mb": 128}
                epa.api.create_flavor({**flavor, "pci_passthrough:alias": f"{alias['name']}:1"})
            token = epa.api.create_host("lab")["agent_token"]
        config = work / "agent.toml"
        config.write_text(
            AGENT_CONFIG.format(nic_netdev=k.netdev(nic_pf), nic_vfs=NIC_VFS, e1000=k.functions(k.E1000)[1])
        )
        with rec.phase("system: agent makes VFs and reports"):
            epa.start_agent("agent-system", token, "qemu:///system", config)
            wait("the inventory's VFs", lambda: _vfs_reported(epa, NIC_VFS + 2), DEADLINE_S, 2)
            rec.fact("vfs", {a: k.describe(a) for a in (*k.vfs(nic_pf), *k.vfs(nvme_pf))})
            rec.fact("inventory", epa.api.list_devices(host="lab"))
            rec.fact("host", epa.api.get_host("lab"))
        run_server(rec, epa, "system", "lab-sys", nic_pf)
        with rec.phase("failure: IOMMU group not viable, managed (libvirt detaches, QEMU refuses)"):
            group_not_viable(rec, epa, "failure.group_managed", nic_pf)
        epa.stop_agent()
        embed_root = work / "embed"
        (embed_root / "etc").mkdir(parents=True, exist_ok=True)
        (embed_root / "etc" / "qemu.conf").write_text(k.QEMU_CONF)
        with rec.phase("embed: agent starts"):
            # and the NVMe VFs unmanaged (managed = "no"): the agent binds them to vfio-pci itself
            unmanaged = work / "agent-unmanaged.toml"
            e1000 = k.functions(k.E1000)[1]
            unmanaged.write_text(
                config.read_text()
                .replace('product_id = "0010" }', 'product_id = "0010", managed = "no" }')
                .replace(f'address = "{e1000}" }}', f'address = "{e1000}", managed = "no" }}')
            )
            epa.start_agent("agent-embed", epa.api.rotate_token("lab"), f"qemu:///embed?root={embed_root}", unmanaged)
        with rec.phase("embed: the L2 image"):
            image = l2_image(epa, work)
        run_server(rec, epa, "embed", "lab-emb", nic_pf, image)
        run_failures(rec, epa, nic_pf, nvme_pf, DEADLINE_S)
        rediscovery(rec, epa, nic_pf, work)
    finally:
        if epa is not None:
            epa.stop_all()
        say("done")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
