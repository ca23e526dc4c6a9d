"""End to end, as an operator runs it: `epa serve` on SQLite, hosts created with the CLI, two `epa agent`
processes reporting simulated hosts, and the inventory they report, changes included, read back."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from epa.client import ApiClient
from epa.errors import Forbidden
from epa.simulate.hosts import nfv_host, no_numa_host
from epa.simulate.sysfs_tree import render_sysfs
from support.procs import Processes, start_serve, wait_for

pytestmark = pytest.mark.slow

EPA = [sys.executable, "-m", "epa"]
EDGE_FREE_VF = "0000:01:02.1"  # an X710 VF of eno1 on the edge box, never claimed here


@dataclass
class Cluster:
    url: str
    admin: str
    env: dict[str, str]
    tmp: Path
    procs: Processes

    def cli(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, EPA_URL=self.url, EPA_TOKEN=token or self.admin)
        return subprocess.run([*EPA, *args], env=env, capture_output=True, text=True, timeout=30, check=False)

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def agent(self, name: str, token: str, sysfs: Path, *extra: str) -> subprocess.Popen[bytes]:
        args = [
            *EPA, "agent", "--server", self.url, "--token", token, "--host-name", name,
            "--sysfs-root", str(sysfs), "--procfs-root", str(self.tmp / "proc"),
            "--interval", "0.5", "--heartbeat-every", "4", *extra,
        ]  # fmt: skip
        return self.procs.start(args, self.tmp / f"agent-{name}.log", self.env)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    env.pop("EPA_URL", None)
    env.pop("EPA_TOKEN", None)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal:       16384000 kB\n")
    procs = Processes()
    try:
        url = start_serve(procs, tmp_path / "serve.log", env, ["--db", str(tmp_path / "epa.db")], tmp_path)
        admin = (tmp_path / "admin-token").read_text().strip()
        assert oct((tmp_path / "admin-token").stat().st_mode & 0o777) == "0o600"
        yield Cluster(url, admin, env, tmp_path, procs)
    finally:
        procs.stop_all()


def test_two_agents_report_their_hosts_and_a_vanished_vf_is_removed(cluster: Cluster) -> None:
    nfv, edge = nfv_host("nfv-1"), no_numa_host("edge-1")
    nfv_sys = render_sysfs(nfv, cluster.tmp / "nfv-sys")
    edge_sys = render_sysfs(edge, cluster.tmp / "edge-sys")
    tokens = {name: cluster.cli_json("host", "create", name)["agent_token"] for name in ("nfv-1", "edge-1")}
    qat_spec = '{"vendor_id": "8086", "product_id": "37c9"}'
    x710_vf_spec = '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet1"}'
    nfv_agent = cluster.agent("nfv-1", tokens["nfv-1"], nfv_sys, "--device-spec", qat_spec)
    edge_agent = cluster.agent("edge-1", tokens["edge-1"], edge_sys, "--device-spec", x710_vf_spec)
    expected = {"nfv-1": len(nfv.functions), "edge-1": len(edge.functions)}

    def both_reported() -> dict[str, list[dict[str, Any]]] | None:
        by_host: dict[str, list[dict[str, Any]]] = {}
        for d in cluster.cli_json("device", "list"):
            by_host.setdefault(d["host"], []).append(d)
        counts = {h: len(ds) for h, ds in by_host.items()}
        return by_host if counts == expected else None

    by_host = wait_for("both inventories", both_reported)
    assert {d["status"] for ds in by_host.values() for d in ds} == {"available"}
    assert sum(d["assignable"] for d in by_host["nfv-1"]) == sum(f.device == "37c9" for f in nfv.functions)
    edge_assignable = [d for d in by_host["edge-1"] if d["assignable"]]
    assert len(edge_assignable) == 4 and {d["tags"]["physical_network"] for d in edge_assignable} == {"physnet1"}

    hosts = {h["name"]: h for h in cluster.cli_json("host", "list")}
    assert [(c["node"], c["socket"], c["memory_mb"]) for c in hosts["nfv-1"]["numa_cells"]] == [
        (0, 0, 196_608_000 // 1024),
        (1, 1, 196_608_000 // 1024),
    ]
    assert [(c["node"], c["cpus"], c["memory_mb"]) for c in hosts["edge-1"]["numa_cells"]] == [
        (0, [0, 1, 2, 3], 16_000)
    ]
    assert all(h["generation"] >= 1 and h["last_report_at"] for h in hosts.values())

    # A free VF disappears from the edge box (its driver unbound it, the PF dropped a VF...).
    link = edge_sys / "bus" / "pci" / "devices" / EDGE_FREE_VF
    shutil.rmtree(link.resolve())
    link.unlink()

    def vf_removed() -> bool | None:
        removed = cluster.cli_json("device", "list", "--host", "edge-1", "--status", "removed")
        return [d["address"] for d in removed] == [EDGE_FREE_VF] or None

    wait_for(f"{EDGE_FREE_VF} to be reported removed", vf_removed, deadline_s=15)
    assert len(cluster.cli_json("device", "list", "--host", "nfv-1", "--status", "available")) == expected["nfv-1"]

    # Heartbeats keep last_report_at fresh although nothing changes.
    before = cluster.cli_json("host", "show", "nfv-1")["last_report_at"]
    wait_for(
        "a heartbeat from nfv-1",
        lambda: cluster.cli_json("host", "show", "nfv-1")["last_report_at"] != before or None,
        deadline_s=15,
    )

    for proc in (nfv_agent, edge_agent):
        assert proc.poll() is None, "an agent died"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    log = (cluster.tmp / "agent-edge-1.log").read_text()
    assert "agent started: host edge-1" in log and "agent stopped" in log
    assert re.search(r"generation \d+→\d+, changes \+0 ~\d+ -1,", log), log
    assert "Traceback" not in log


def test_an_agent_token_cannot_write_another_host(cluster: Cluster) -> None:
    tokens = {name: cluster.cli_json("host", "create", name)["agent_token"] for name in ("nfv-1", "edge-1")}
    with ApiClient(cluster.url, tokens["nfv-1"]) as agent_client:
        assert agent_client.get_host("nfv-1")["generation"] == 0
        assert agent_client.put_inventory("nfv-1", 0, (), ()).generation == 1
        with pytest.raises(Forbidden):
            agent_client.put_inventory("edge-1", 0, (), ())
        with pytest.raises(Forbidden):
            agent_client.get_host("edge-1")
        with pytest.raises(Forbidden):
            agent_client.list_hosts()
    assert cluster.cli_json("host", "show", "edge-1")["generation"] == 0

    # Through the CLI the same refusal is one line and exit status 1.
    done = cluster.cli("host", "show", "edge-1", token=tokens["nfv-1"])
    assert done.returncode == 1 and done.stderr.startswith("epa: error: ") and "Traceback" not in done.stderr

    # A rotated token locks the old one out at once; the agent with it exits 1, naming the reason.
    cluster.cli_json("host", "token", "edge-1")
    old = cluster.procs.start(
        [*EPA, "agent", "--once", "--server", cluster.url, "--token", tokens["edge-1"],
         "--host-name", "edge-1", "--sysfs-root", str(render_sysfs(no_numa_host(), cluster.tmp / "sys"))],
        cluster.tmp / "agent-old.log",
        cluster.env,
    )  # fmt: skip
    assert old.wait(timeout=30) == 1
    errors = [ln for ln in (cluster.tmp / "agent-old.log").read_text().splitlines() if ln.startswith("epa: error")]
    assert len(errors) == 1, errors
