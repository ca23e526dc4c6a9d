"""End to end, as an operator runs it: `epa serve` on SQLite and one `epa agent` per simulated host (a
fake /sys with the simulated PF driver, libvirt's test:/// driver on the same host), aliases, flavors and
servers created through the CLI; servers become active with exactly their devices, are deleted and give
the devices back; an agent killed mid-build converges when restarted; a libvirt failure is an error."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from epa.client import ApiClient
from epa.domain.address import PciAddress
from epa.hostnet.simulated import SimVf, lock_path, read_vf_states
from epa.simulate.hosts import nfv_host, no_numa_host
from epa.simulate.libvirt_node import write_node_xml
from epa.simulate.model import SimHost
from epa.simulate.sysfs_tree import render_sysfs
from epa.virt import parse_domain_devices
from support.procs import Processes, start_serve, wait_for

pytestmark = pytest.mark.slow

EPA = [sys.executable, "-m", "epa"]
T = TypeVar("T")
X710_VFS = '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet2", "trusted": "yes"}'
SPECS = {
    "nfv-1": [
        '{"vendor_id": "8086", "product_id": "37c9"}',
        X710_VFS,
        '{"vendor_id": "10de", "managed": "no"}',
    ],
    "edge-1": ['{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet3"}'],
}


@dataclass
class Cluster:
    url: str
    admin: str
    env: dict[str, str]
    tmp: Path
    procs: Processes
    hosts: dict[str, SimHost]
    api: ApiClient  # the admin's, for reading (each CLI run costs a second of Python start-up)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, EPA_URL=self.url, EPA_TOKEN=self.admin)
        return subprocess.run([*EPA, *args], env=env, capture_output=True, text=True, timeout=30, check=False)

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def sysfs(self, name: str) -> Path:
        return self.tmp / f"{name}-sys"

    def start_agent(self, name: str, token: str) -> subprocess.Popen[bytes]:
        specs = [arg for spec in SPECS[name] for arg in ("--device-spec", spec)]
        args = [
            *EPA, "agent", "--server", self.url, "--token", token, "--host-name", name,
            "--sysfs-root", str(self.sysfs(name)), "--procfs-root", str(self.tmp / "proc"),
            "--hypervisor", f"test://{self.tmp / f'{name}-node.xml'}",
            "--interval", "0.5", *specs,
        ]  # fmt: skip
        log = self.tmp / f"agent-{name}.log"
        with log.open("ab") as out:
            out.write(b"--- agent start ---\n")
            out.flush()
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        self.procs.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.tmp.glob("*.log")))

    def wait(self, what: str, probe: Callable[[], T | None]) -> T:
        try:
            return wait_for(what, probe, deadline_s=30)
        except pytest.fail.Exception:
            pytest.fail(f"timed out waiting for {what}\n{self.logs()}")

    def server_status(self, server_id: str, status: str) -> dict[str, Any] | None:
        server = self.api.get_server(server_id)
        if server["status"] == "error" and status != "error":
            pytest.fail(f"server {server_id} failed: {server['status_reason']}\n{self.logs()}")
        return server if server["status"] == status else None

    def device_statuses(self, host: str, addresses: list[str]) -> set[str]:
        found = {d["address"]: d["status"] for d in self.api.list_devices(host=host)}
        return {found[a] for a in addresses}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    env.pop("EPA_URL", None)
    env.pop("EPA_TOKEN", None)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal:       16384000 kB\n")
    hosts = {"nfv-1": nfv_host("nfv-1"), "edge-1": no_numa_host("edge-1")}
    for name, host in hosts.items():
        render_sysfs(host, tmp_path / f"{name}-sys")
        write_node_xml(host, tmp_path / f"{name}-node.xml")
    procs = Processes()
    try:
        url = start_serve(procs, tmp_path / "serve.log", env, ["--db", str(tmp_path / "epa.db")], tmp_path)
        admin = (tmp_path / "admin-token").read_text().strip()
        api = ApiClient(url, admin)
        procs_api = contextlib.closing(api)
        cluster = Cluster(url, admin, env, tmp_path, procs, hosts, api)
        cluster.cli_json("alias", "create", '{"name": "qat", "vendor_id": "8086", "product_id": "37c9"}')
        cluster.cli_json("alias", "create", '{"name": "t4", "vendor_id": "10de", "product_id": "1eb8"}')
        cluster.cli_json("flavor", "create", "vnf", "--vcpus", "2", "--ram", "1024", "--pci", "qat:1")
        cluster.cli_json("flavor", "create", "net", "--vcpus", "1", "--ram", "512")
        cluster.cli_json("flavor", "create", "gpu", "--vcpus", "1", "--ram", "512", "--pci", "t4:1")
        with procs_api:
            yield cluster
    finally:
        procs.stop_all()


def start_agents(cluster: Cluster, *names: str) -> dict[str, subprocess.Popen[bytes]]:
    tokens = {name: cluster.cli_json("host", "create", name)["agent_token"] for name in names}
    agents = {name: cluster.start_agent(name, tokens[name]) for name in names}
    expected = {name: len(cluster.hosts[name].functions) for name in names}

    def reported() -> bool | None:
        counts: dict[str, int] = {}
        for d in cluster.api.list_devices():
            counts[d["host"]] = counts.get(d["host"], 0) + 1
        return counts == expected or None

    cluster.wait("every inventory", reported)
    return agents


def create_on(cluster: Cluster, host: str, *args: str) -> dict[str, Any]:
    """Create a server through the CLI; it must land on ``host`` (the only one with its devices)."""
    created: dict[str, Any] = cluster.cli_json("server", "create", *args)
    assert created["host"] == host, created
    return created


def port_vf(cluster: Cluster, server: dict[str, Any]) -> tuple[str, str, int]:
    """(VF address, PF interface, VF index) of the server's first port."""
    address = next(d["address"] for d in server["devices"] if d["port"] == 0)
    vf = cluster.api.get_device(server["host"], address)
    pf = cluster.api.get_device(server["host"], vf["parent_addr"])
    return address, pf["netdev"], pf["vf_addrs"].index(address)


def test_servers_on_two_hosts_become_active_with_exactly_their_devices_then_give_them_back(cluster: Cluster) -> None:
    start_agents(cluster, "nfv-1", "edge-1")
    port = "physnet=physnet2,vnic_type=direct,trusted=true,vlan=100"
    vnf = create_on(cluster, "nfv-1", "vnf-1", "--flavor", "vnf", "--port", port)
    edge = create_on(cluster, "edge-1", "edge-vm", "--flavor", "net", "--port", "physnet=physnet3,vlan=200")
    for created, vlan, trusted in ((vnf, 100, True), (edge, 200, False)):
        active = cluster.wait(f"{created['name']} active", lambda c=created: cluster.server_status(c["id"], "active"))
        claimed = {d["address"] for d in active["devices"]}
        xml = active["domain_xml"]
        assert {str(a) for a in parse_domain_devices(xml)} == claimed, xml
        assert f"<tag id='{vlan}'/>" in xml and f"<mac address='{active['ports'][0]['mac']}'/>" in xml
        assert active["domain_state"] == "running" and active["domain_uuid"] == created["id"]
        _, pf, index = port_vf(cluster, active)
        held = read_vf_states(cluster.sysfs(created["host"]))[pf][index]
        assert held == SimVf(active["ports"][0]["mac"], vlan, 0, trusted=trusted, spoofchk=not trusted)
    assert len([d for d in vnf["devices"] if d["port"] is None]) == 1

    for created in (vnf, edge):
        assert cluster.cli("server", "delete", created["id"]).returncode == 0
    for created in (vnf, edge):
        addresses = [d["address"] for d in created["devices"]]
        cluster.wait(
            f"{created['name']}'s devices back",
            lambda c=created, a=addresses: cluster.device_statuses(c["host"], a) == {"available"} or None,
        )
        assert cluster.api.get_server(created["id"])["status"] == "deleted"
        _, pf, index = port_vf(cluster, created)
        assert read_vf_states(cluster.sysfs(created["host"]))[pf][index] == SimVf()
    log = (cluster.tmp / "agent-nfv-1.log").read_text()
    assert "domain epa-vnf-1-" in log and "released" in log and "Traceback" not in log


def test_an_agent_killed_mid_build_converges_and_a_libvirt_failure_is_an_error(cluster: Cluster) -> None:
    agents = start_agents(cluster, "nfv-1")
    lock = lock_path(cluster.sysfs("nfv-1"))
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as held, contextlib.ExitStack() as unlock:
        # Holding the simulated PFs' lock stops the build inside its VF configuration.
        fcntl.flock(held, fcntl.LOCK_EX)
        unlock.callback(fcntl.flock, held, fcntl.LOCK_UN)
        port = "physnet=physnet2,vnic_type=direct,vlan=300"
        created = create_on(cluster, "nfv-1", "vnf-2", "--flavor", "vnf", "--port", port)
        cluster.wait("vnf-2 building", lambda: cluster.server_status(created["id"], "building"))
        agents["nfv-1"].send_signal(signal.SIGKILL)
        assert agents["nfv-1"].wait(timeout=10) == -signal.SIGKILL
    token = cluster.api.rotate_token("nfv-1")
    cluster.start_agent("nfv-1", token)
    active = cluster.wait("vnf-2 active after the restart", lambda: cluster.server_status(created["id"], "active"))
    assert {str(a) for a in parse_domain_devices(active["domain_xml"])} == {d["address"] for d in active["devices"]}

    # The T4 is tagged managed=no: the agent detaches it through libvirt, which the test driver refuses.
    gpu = create_on(cluster, "nfv-1", "gpu-1", "--flavor", "gpu")
    failed = cluster.wait("gpu-1 error", lambda: cluster.server_status(gpu["id"], "error"))
    assert "cannot detach PCI device 0000:af:00.0" in failed["status_reason"]
    assert cluster.device_statuses("nfv-1", ["0000:af:00.0"]) == {"available"}
    assert PciAddress.parse("0000:af:00.0") not in parse_domain_devices(active["domain_xml"])
