"""kill -9 at every step of create and delete, then restart: everything converges.

A cloud of two `epa serve` processes on one PostgreSQL database, one host with its `epa agent` (a fake
/sys with the simulated PF driver) and its hypervisor: a private libvirtd serving the test driver, so
that domains outlive a killed agent as they do on a real host. For each crash point (``epa.crashpoints``)
the process that owns it is started with ``EPA_CRASH_AT`` set and dies by SIGKILL when it gets there;
the test then kills the other one too (the API process and the agent both die at every step), restarts
both, runs ONE agent pass (``epa agent --once``) and checks that the cloud has converged:

- no acknowledged create is lost (it is active, with its domain running on exactly its devices), and an
  unacknowledged one either never happened or is complete, never half there;
- no claim is left without a live server (a deleted server's devices are all free again), checked
  after that single pass: no orphaned claim outlives one reconcile interval;
- no domain is left on the host without a live server, and no VF keeps a deleted server's settings.

The second API process stays up throughout: the cloud keeps answering while one process is down."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from epa.client import ApiClient
from epa.crashpoints import ENV, POINTS
from epa.errors import ServiceUnavailable
from epa.hostnet.simulated import SimVf, read_vf_states
from epa.libvirt_client import open_connection
from epa.simulate.hosts import nfv_host
from epa.simulate.sysfs_tree import render_sysfs
from epa.virt import parse_domain_devices, parse_domain_metadata
from support.hypervisor import libvirt_daemon
from support.pg import pg_database
from support.procs import Processes, free_port, wait_for, wait_healthy

pytestmark = pytest.mark.slow

EPA = [sys.executable, "-m", "epa"]
HOST = "nfv-1"
SPECS = [
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet2", "trusted": "yes"}',
]
PORT = {"physnet": "physnet2", "vnic_type": "direct", "vlan": 100}
LIVE = frozenset({"active", "stopped"})
SETTLED = LIVE | {"deleted", "error"}
T = TypeVar("T")

CREATE_POINTS = [
    "claim.before_commit",
    "claim.after_commit",
    "agent.build.before_define",
    "agent.build.after_define",
    "agent.build.after_start",
]
DELETE_POINTS = [
    "delete.after_commit",
    "release.before_commit",
    "release.after_commit",
    "agent.teardown.after_destroy",
    "agent.teardown.before_released",
]


@dataclass
class Cloud:
    tmp: Path
    env: dict[str, str]
    db_url: str
    hypervisor: str
    procs: Processes
    admin: str
    port_a: int
    agent_token: str = ""
    api_a: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    url_b: str = ""
    acked: dict[str, str] = field(default_factory=dict)  # server id -> what the client last heard: live/deleted

    @property
    def url_a(self) -> str:
        return f"http://127.0.0.1:{self.port_a}"

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    def wait(self, what: str, probe: Callable[[], T | None]) -> T:
        try:
            return wait_for(what, probe, deadline_s=30)
        except pytest.fail.Exception:
            pytest.fail(f"timed out waiting for {what}\n{self.logs()}")

    # -- processes -----------------------------------------------------------------------------

    def start_api_a(self, crash_at: str | None = None) -> None:
        env = dict(self.env, **({ENV: crash_at} if crash_at else {}))
        args = [*EPA, "serve", "--database-url", self.db_url, "--port", str(self.port_a), "--data-dir", str(self.tmp)]
        with self.log("serve-a").open("ab") as out:
            out.write(f"--- start (crash at {crash_at}) ---\n".encode())
            out.flush()
            self.api_a = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.procs.append(self.api_a)
        wait_healthy(self.api_a, self.url_a, self.log("serve-a"))

    def agent_args(self, *extra: str) -> list[str]:
        specs = [arg for spec in SPECS for arg in ("--device-spec", spec)]
        return [
            *EPA, "agent", "--server", self.url_a, "--token", self.agent_token, "--host-name", HOST,
            "--sysfs-root", str(self.tmp / "sys"), "--procfs-root", str(self.tmp / "proc"),
            "--hypervisor", self.hypervisor, "--interval", "0.3", *specs, *extra,
        ]  # fmt: skip

    def start_agent(self, crash_at: str | None = None) -> None:
        env = dict(self.env, **({ENV: crash_at} if crash_at else {}))
        with self.log("agent").open("ab") as out:
            out.write(f"--- start (crash at {crash_at}) ---\n".encode())
            out.flush()
            self.agent = subprocess.Popen(self.agent_args(), stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.procs.append(self.agent)

    def agent_once(self) -> None:
        """One agent pass (scan, report, reconcile), to the end."""
        with self.log("agent").open("ab") as out:
            out.write(b"--- one pass (--once) ---\n")
            out.flush()
            done = subprocess.run(
                self.agent_args("--once"), stdout=out, stderr=subprocess.STDOUT, env=self.env, timeout=60, check=False
            )
        assert done.returncode == 0, self.logs()

    def kill9(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def died_at(self, proc: subprocess.Popen[bytes] | None, point: str) -> None:
        """``proc`` killed itself at ``point``: the crash happened where the test meant it to."""
        assert proc is not None
        code = self.wait(f"the process armed at {point} to die", proc.poll)
        assert code == -signal.SIGKILL, f"exit {code}, not SIGKILL\n{self.logs()}"

    def crash_all_then_restart(self) -> None:
        """Both the API process and the agent die (whichever is still up is killed now); the API process
        comes back unarmed and the agent makes exactly one pass."""
        self.kill9(self.api_a)
        self.kill9(self.agent)
        self.start_api_a()
        self.agent_once()

    # -- looking --------------------------------------------------------------------------------

    def admin_b(self) -> ApiClient:
        return ApiClient(self.url_b, self.admin)

    def servers(self) -> dict[str, dict[str, Any]]:
        """Every server listed (the list leaves deleted ones out) and every one a client heard of."""
        with self.admin_b() as api:
            found = {s["id"]: s for s in api.list_servers()}
            for server_id in set(self.acked) - set(found):
                found[server_id] = api.get_server(server_id)
            return found

    def domains(self) -> dict[str, tuple[str, str]]:
        """EPA's domains on the host: server id -> (state, XML)."""
        out: dict[str, tuple[str, str]] = {}
        with open_connection(self.hypervisor) as conn:
            for name, _uuid, state in conn.list_domains():
                xml = conn.domain_xml(name)
                meta = parse_domain_metadata(xml)
                if meta is not None:
                    assert meta.server_id not in out, f"two domains for server {meta.server_id}"
                    out[meta.server_id] = (state, xml)
        return out


def check_converged(cloud: Cloud) -> dict[str, dict[str, Any]]:
    """Every invariant, straight after the restart and one agent pass. Returns the servers by id."""
    servers = cloud.servers()
    unsettled = {s["name"]: s["status"] for s in servers.values() if s["status"] not in SETTLED}
    assert not unsettled, f"servers still in flight after one agent pass: {unsettled}\n{cloud.logs()}"
    for server_id, heard in cloud.acked.items():
        assert server_id in servers, f"acknowledged server {server_id} is lost"
        if heard == "live":
            assert servers[server_id]["status"] == "active", servers[server_id]
        else:
            assert servers[server_id]["status"] == "deleted", servers[server_id]
    live = {sid: s for sid, s in servers.items() if s["status"] in LIVE}

    # Claims: exactly the live servers' devices are held, each by its own server.
    with cloud.admin_b() as api:
        devices = api.list_devices(host=HOST)
    held = {d["address"]: d["owner"] for d in devices if d["status"] in ("claimed", "allocated")}
    wanted = {d["address"]: sid for sid, s in live.items() for d in s["devices"]}
    assert held == wanted, f"devices held {held} but live servers hold {wanted}"

    # Domains: one per live server, running on exactly its devices; nothing else of EPA's on the host.
    domains = cloud.domains()
    assert set(domains) == set(live), f"domains for {sorted(domains)}, live servers {sorted(live)}"
    for sid, (state, xml) in domains.items():
        assert state == "running", (sid, state)
        assert {str(a) for a in parse_domain_devices(xml)} == {d["address"] for d in live[sid]["devices"]}

    # VFs: a port's VF keeps its settings while its server lives, and is reset once it is released.
    states = read_vf_states(cloud.tmp / "sys")
    port_vfs = {
        d["address"]: sid for sid, s in servers.items() if s["host"] == HOST for d in s["devices"] if d["port"] == 0
    }
    with cloud.admin_b() as api:
        for address, sid in port_vfs.items():
            vf = api.get_device(HOST, address)
            pf = api.get_device(HOST, vf["parent_addr"])
            current = states.get(pf["netdev"], {}).get(pf["vf_addrs"].index(address), SimVf())
            if sid in live and held.get(address) == sid:
                assert current.vlan == 100 and current.mac == live[sid]["ports"][0]["mac"], (address, current)
            elif address not in held:
                assert current == SimVf(), f"VF {address} of released server {sid} keeps {current}"
    return servers


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """The cloud, set up once for the module; each test starts from it with nothing armed."""
    tmp = tmp_path_factory.mktemp("crash")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "xdg-config"), XDG_DATA_HOME=str(tmp / "xdg-data"))
    for name in ("EPA_URL", "EPA_TOKEN", ENV):
        env.pop(name, None)
    (tmp / "proc").mkdir()
    (tmp / "proc" / "meminfo").write_text("MemTotal:       16384000 kB\n")
    render_sysfs(nfv_host(HOST), tmp / "sys")
    procs = Processes()
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(pg_database())
        stack.callback(procs.stop_all)
        daemon = stack.enter_context(libvirt_daemon())
        c = Cloud(tmp, env, db_url, daemon.uri, procs, admin="", port_a=free_port())
        c.start_api_a()
        c.admin = (tmp / "admin-token").read_text().strip()
        port_b = free_port()
        procs.start(
            [*EPA, "serve", "--database-url", db_url, "--port", str(port_b), "--data-dir", str(tmp / "b")],
            c.log("serve-b"),
            env,
        )
        c.url_b = f"http://127.0.0.1:{port_b}"
        with c.admin_b() as api:
            c.wait("API process B", lambda: _answers(api))
            c.agent_token = api.create_host(HOST)["agent_token"]
            api.create_alias({"name": "qat", "vendor_id": "8086", "product_id": "37c9"})
            api.create_flavor({"name": "vnf", "vcpus": 2, "memory_mb": 1024, "pci_passthrough:alias": "qat:1"})
        c.agent_once()  # the host's inventory is in
        yield c


@pytest.fixture
def cloud(site: Cloud) -> Cloud:
    """The module's cloud with API process A up and unarmed, no agent running and no live server."""
    site.kill9(site.agent)
    if site.api_a is None or site.api_a.poll() is not None:
        site.start_api_a()
    live = [sid for sid, heard in site.acked.items() if heard == "live"]
    if live:
        site.start_agent()
        with ApiClient(site.url_a, site.admin) as api:
            for server_id in live:
                api.delete_server(server_id)
                site.acked[server_id] = "deleted"
        site.wait("the last test's servers deleted", lambda: _all_deleted(site))
        site.kill9(site.agent)
    return site


def _all_deleted(cloud: Cloud) -> bool | None:
    servers = cloud.servers()
    return all(servers[i]["status"] == "deleted" for i, heard in cloud.acked.items() if heard == "deleted") or None


def _answers(api: ApiClient) -> bool | None:
    try:
        api.health()
    except ServiceUnavailable:
        return None
    return True


def cloud_with_agent(cloud: Cloud) -> Cloud:
    """The agent running (started if it is not)."""
    if cloud.agent is None or cloud.agent.poll() is not None:
        cloud.start_agent()
    return cloud


def _name(point: str) -> str:
    return "vm-" + point.replace(".", "-").replace("_", "-")


def _create(cloud: Cloud, name: str) -> dict[str, Any]:
    with ApiClient(cloud.url_a, cloud.admin) as api:
        created = api.create_server(name, "vnf", [PORT])
    assert created["host"] == HOST and created["status"] == "scheduled", created
    cloud.acked[created["id"]] = "live"
    return created


def _active(cloud: Cloud, server_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        server = cloud.servers()[server_id]
        assert server["status"] not in ("error", "deleted"), f"{server}\n{cloud.logs()}"
        return server if server["status"] == "active" else None

    return cloud.wait(f"server {server_id} active", probe)


@pytest.mark.parametrize("point", CREATE_POINTS)
def test_a_crash_while_creating_converges_after_one_pass(cloud: Cloud, point: str) -> None:
    on_api = point.startswith(("claim.", "delete.", "release."))
    name = _name(point)
    if on_api:
        cloud.kill9(cloud.api_a)
        cloud.start_api_a(crash_at=point)
    cloud.start_agent(crash_at=None if on_api else point)

    key = f"retry-{name}"
    if on_api:
        with ApiClient(cloud.url_a, cloud.admin) as api, pytest.raises(ServiceUnavailable):
            api.create_server(name, "vnf", [PORT], idempotency_key=key)  # the process dies before it answers
        cloud.died_at(cloud.api_a, point)
    else:
        _create(cloud, name)
        cloud.died_at(cloud.agent, point)
    with cloud.admin_b() as api:  # meanwhile the other API process answers
        assert api.health()["status"] == "ok"

    cloud.crash_all_then_restart()
    servers = check_converged(cloud)
    named = [s for s in servers.values() if s["name"] == name]
    if point == "claim.before_commit":
        assert named == [], "a claim that was never committed left a server behind"
    else:
        # Committed before the crash: the server is whole and running.
        assert [s["status"] for s in named] == ["active"], named
    if on_api:
        # The client that lost the answer sends the create again with its Idempotency-Key: it gets the
        # server its first request made, or (never committed) the one this request makes - never two.
        with ApiClient(cloud.url_a, cloud.admin) as api:
            retried = api.create_server(name, "vnf", [PORT], idempotency_key=key)
        if named:
            assert retried["id"] == named[0]["id"] and retried["status"] == "active", retried
        cloud.acked[retried["id"]] = "live"
        _active(cloud_with_agent(cloud), retried["id"])
        assert [s["id"] for s in cloud.servers().values() if s["name"] == name] == [retried["id"]]
    elif named:
        cloud.acked[named[0]["id"]] = "live"

    # And the cloud goes on: delete everything, all comes back.
    cloud_with_agent(cloud)
    with ApiClient(cloud.url_a, cloud.admin) as api:
        for server_id in list(cloud.acked):
            api.delete_server(server_id)
            cloud.acked[server_id] = "deleted"
    cloud.wait("every server deleted", lambda: _all_deleted(cloud))
    check_converged(cloud)


@pytest.mark.parametrize("point", DELETE_POINTS)
def test_a_crash_while_deleting_converges_after_one_pass(cloud: Cloud, point: str) -> None:
    on_api = point.startswith(("claim.", "delete.", "release."))
    name = _name(point)
    cloud.start_agent()
    keep = _create(cloud, f"{name}-keep")
    doomed = _create(cloud, name)
    for server in (keep, doomed):
        _active(cloud, server["id"])
    if on_api:
        cloud.kill9(cloud.api_a)
        cloud.start_api_a(crash_at=point)
    else:
        cloud.kill9(cloud.agent)
        cloud.start_agent(crash_at=point)

    with ApiClient(cloud.url_a, cloud.admin) as api:
        if point == "delete.after_commit":
            with pytest.raises(ServiceUnavailable):
                api.delete_server(doomed["id"])  # the process dies before it answers
        else:
            assert api.delete_server(doomed["id"])["status"] == "deleting"
    cloud.died_at(cloud.api_a if on_api else cloud.agent, point)
    # The delete was committed before the crash (or acknowledged): it must complete.
    cloud.acked[doomed["id"]] = "deleted"

    cloud.crash_all_then_restart()
    check_converged(cloud)

    # The freed devices serve the next server.
    cloud.start_agent()
    again = _create(cloud, f"{name}-next")
    _active(cloud, again["id"])
    check_converged(cloud)


def test_every_crash_point_is_exercised_here_and_placed_in_the_code() -> None:
    assert sorted(CREATE_POINTS + DELETE_POINTS) == sorted(POINTS)
    source = "\n".join(p.read_text() for p in Path(__file__).parents[2].joinpath("src", "epa").rglob("*.py"))
    for point in POINTS:
        assert source.count(f'crash_point("{point}")') == 1, point
