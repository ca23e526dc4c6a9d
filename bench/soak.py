"""Soak: 32 clients creating and deleting servers through several ``epa serve`` processes on one PostgreSQL,
while a real ``epa agent`` per simulated host builds and tears down their libvirt (``test:///``) domains, until
10,000 creates and deletes have been answered. Demand is well above what the hosts have, so every pool (QAT
VFs, VFs per physnet, the PF, the GPU, CPUs) runs dry on the way and creates end in ``no valid host``.

Every answer must be a 2xx or a clean error (JSON ``{"error": {"code", "message"}}``, never a 5xx). When the
clients stop and the agents are done, the database is checked directly: no device in two claims, device
statuses and claims agree, a PF and its VFs never both in use, the derived ``unavailable`` statuses right,
nothing held by a server that is not alive, every server a client was given still there (``deleted`` if
that client deleted it, else ``active`` with exactly its devices, or ``error`` with a reason - and only for
want of a host: no build may fail here), the API's counters matching what the clients saw, no traceback in any
log. Then every remaining server is deleted and every device must be free again.

``run_soak`` is the whole thing (``tests/e2e/test_soak.py`` runs it small); ``main`` runs it at full size,
prints the tables, writes ``bench/results/soak*.json`` and exits non-zero when a check fails.
``EPA_BENCH_SCALE`` shrinks the number of operations."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import sqlalchemy

from bench.create_throughput import Tally, Tickets, percentile, run_workers
from bench.inventory_ingest import pg_database, pg_reachable, result_name, scale
from bench.processes import EPA, api_servers, start, stop
from bench.report import emit
from epa.simulate.hosts import nfv_host
from epa.simulate.libvirt_node import write_node_xml
from epa.simulate.model import SimHost
from epa.simulate.sysfs_tree import render_sysfs

OPERATIONS = 10_000
# The QAT VFs; physnet1 on the first X710 port (the PF and its 8 iavf VFs), physnet2 on the second port's 8
# vfio-pci VFs; the T4.
SPECS = (
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"address": "0000:18:00.0", "physical_network": "physnet1"}',
    '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet2", "trusted": "yes"}',
    '{"vendor_id": "10de"}',
)
ALIASES = (
    {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"},
    {"name": "t4", "vendor_id": "10de", "product_id": "1eb8", "numa_policy": "preferred"},
)
FLAVORS = (
    {"name": "vnf", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": "qat:1"},
    {"name": "vnf2", "vcpus": 4, "memory_mb": 4096, "pci_passthrough:alias": "qat:2"},
    {"name": "gpu", "vcpus": 4, "memory_mb": 8192, "pci_passthrough:alias": "t4:1"},
    {"name": "small", "vcpus": 1, "memory_mb": 1024},
)
PHYSNET1 = {"physnet": "physnet1", "vnic_type": "direct"}
PHYSNET2 = {"physnet": "physnet2", "vnic_type": "direct", "vlan": 100}
WHOLE_PF = {"physnet": "physnet1", "vnic_type": "direct-physical"}
CELL_CPUS = 64
CELL_KIB = 256 * 1024 * 1024
LIVE = ("scheduled", "building", "active", "stopped", "deleting")
BUSY = ("scheduled", "building", "deleting")
# The two clean ways a create ends in error (epa.service.scheduling).
NO_VALID_HOST = "no valid host"
GAVE_UP = re.compile(r"gave up after \d+ rounds of conflicting claims$")


@dataclass(frozen=True)
class Kind:
    """One kind of create: a flavor, ports, how often clients ask for it, how many devices it holds."""

    name: str
    flavor: str
    ports: tuple[dict[str, object], ...]
    weight: int
    devices: int


# Weighted so that each pool is asked for a little more than it has when the clients hold what they may: per
# host 48 QAT VFs (32 on NUMA node 0, 16 on node 1), 8 physnet1 VFs or their PF, 8 physnet2 VFs, one T4, 64 CPUs
# per node.
KINDS = (
    Kind("qat", "vnf", (), 50, 1),
    Kind("2qat+physnet2", "vnf2", (PHYSNET2,), 15, 3),
    Kind("qat+physnet1", "vnf", (PHYSNET1,), 5, 2),
    Kind("physnet1", "small", (PHYSNET1,), 5, 1),
    Kind("whole-pf", "small", (WHOLE_PF,), 5, 1),
    Kind("t4", "gpu", (), 3, 1),
    Kind("cpu-only", "small", (), 14, 0),
)


@dataclass(frozen=True)
class SoakConfig:
    serve_processes: int = 3
    hosts: int = 4
    clients: int = 32
    operations: int = OPERATIONS
    # A client creates while it has fewer live servers than this, with probability 1 - delete_share.
    max_own: int = 8
    delete_share: float = 0.4
    agent_interval: float = 0.25
    quiesce_s: float = 240.0
    seed: int = 1


# -- what the clients saw ------------------------------------------------------------------------------


@dataclass
class Created:
    kind: Kind
    client: int
    status: str  # as the 201 said
    deleted: bool = False  # a DELETE was answered 202
    uncertain: bool = False  # a DELETE failed uncleanly: it may or may not have happened


@dataclass
class Ledger:
    """Every answer, by operation: latencies, outcomes, unclean failures (with a sample), servers created."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    failure_samples: list[str] = field(default_factory=list)
    created: dict[str, Created] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # a "no valid host" reason per kind
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self, op: str, seconds: float, outcome: str | None, failure: str | None = None, kind: Kind | None = None
    ) -> None:
        """``outcome`` for a clean answer; ``failure`` (a short kind, and a sample) for anything else. A clean
        create is also counted under ``create KIND``."""
        with self.lock:
            self.latencies.setdefault(op, []).append(seconds)
            if failure is None:
                self.outcomes.setdefault(op, Counter())[outcome or "?"] += 1
                if kind is not None:
                    self.latencies.setdefault(f"{op} {kind.name}", []).append(seconds)
                    self.outcomes.setdefault(f"{op} {kind.name}", Counter())[outcome or "?"] += 1
            else:
                kind = failure.split("\n", 1)[0][:120]
                self.failures[f"{op}: {kind}"] += 1
                if len(self.failure_samples) < 20:
                    self.failure_samples.append(f"{op}: {failure[:600]}")

    def count(self, op: str) -> int:
        return len(self.latencies.get(op, ()))


def error_shape(resp: httpx.Response) -> str | None:
    """None when ``resp`` is a clean error answer (4xx, ``{"error": {"code": str, "message": str}}``), else
    what is wrong with it."""
    if resp.status_code >= 500:
        return f"{resp.status_code}: {resp.text[:400]}"
    try:
        body = resp.json()
    except ValueError:
        return f"{resp.status_code} with a body that is not JSON: {resp.text[:200]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)):
        return f"{resp.status_code} without the error shape: {resp.text[:200]}"
    return None


class Client:
    """One simulated user: its own connection, its own random choices, its own servers."""

    def __init__(self, n: int, urls: Sequence[str], token: str, config: SoakConfig, ledger: Ledger) -> None:
        self.n = n
        self.urls = urls
        self.rnd = random.Random(config.seed * 1000 + n)
        self.config = config
        self.ledger = ledger
        self.own: list[str] = []
        self.turn = n
        self.headers = {"Authorization": f"Bearer {token}"}
        self.serial = 0

    def url(self) -> str:
        self.turn += 1
        return self.urls[self.turn % len(self.urls)]

    def step(self, http: httpx.Client) -> None:
        if self.own and (len(self.own) >= self.config.max_own or self.rnd.random() < self.config.delete_share):
            self.delete(http, self.own.pop(self.rnd.randrange(len(self.own))))
        else:
            self.create(http)

    def create(self, http: httpx.Client) -> None:
        kind = self.rnd.choices(KINDS, weights=[k.weight for k in KINDS])[0]
        self.serial += 1
        body = {"name": f"c{self.n}-{self.serial}", "flavor": kind.flavor, "ports": list(kind.ports)}
        t0 = time.perf_counter()
        try:
            resp = http.post(f"{self.url()}/v1/servers", json=body)
        except httpx.HTTPError as e:
            self.ledger.record("create", time.perf_counter() - t0, None, f"{type(e).__name__}: {e}")
            return
        seconds = time.perf_counter() - t0
        if resp.status_code != 201:
            bad = error_shape(resp)
            code = "" if bad else resp.json()["error"]["code"]
            self.ledger.record("create", seconds, f"{resp.status_code} {code}", bad, kind)
            return
        server = resp.json()
        status, reason = server.get("status"), server.get("status_reason") or ""
        if status == "scheduled" and server.get("host") and len(server.get("devices", ())) == kind.devices:
            outcome = "scheduled"
        elif status == "error" and reason.startswith(NO_VALID_HOST):
            outcome = NO_VALID_HOST
            with self.ledger.lock:
                self.ledger.reasons.setdefault(kind.name, reason)
        elif status == "error" and GAVE_UP.match(reason):
            outcome = "gave up (conflicts)"
        else:
            self.ledger.record("create", seconds, None, f"201 that is neither scheduled nor a clean error: {server}")
            return
        with self.ledger.lock:
            self.ledger.created[server["id"]] = Created(kind, self.n, status)
        self.own.append(server["id"])
        self.ledger.record("create", seconds, outcome, kind=kind)

    def delete(self, http: httpx.Client, server_id: str) -> None:
        t0 = time.perf_counter()
        try:
            resp = http.delete(f"{self.url()}/v1/servers/{server_id}")
        except httpx.HTTPError as e:
            self.ledger.created[server_id].uncertain = True
            self.ledger.record("delete", time.perf_counter() - t0, None, f"{type(e).__name__}: {e}")
            return
        seconds = time.perf_counter() - t0
        if resp.status_code == 202:
            status = resp.json().get("status")
            if status in ("deleting", "deleted") and resp.json().get("id") == server_id:
                self.ledger.created[server_id].deleted = True
                self.ledger.record("delete", seconds, status)
            else:
                self.ledger.created[server_id].uncertain = True
                self.ledger.record("delete", seconds, None, f"202 that is neither deleting nor deleted: {resp.text}")
            return
        bad = error_shape(resp)
        if bad is None:
            self.own.append(server_id)  # refused cleanly: it is still ours
            self.ledger.record("delete", seconds, f"{resp.status_code} {resp.json()['error']['code']}")
        else:
            self.ledger.created[server_id].uncertain = True
            self.ledger.record("delete", seconds, None, bad)


# -- the cluster ------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    urls: list[str]
    pids: list[int]
    token: str
    engine: sqlalchemy.Engine
    tmp: Path
    hosts: dict[str, SimHost]
    agents: dict[str, subprocess.Popen[bytes]]

    def admin(self) -> httpx.Client:
        return httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    def logs(self) -> list[Path]:
        return sorted([*self.tmp.glob("agent-*.log"), *(self.tmp / "serve").glob("serve-*.log")])


def soak_host(name: str) -> SimHost:
    """An NFV host with 64 CPUs per NUMA node: the devices run out before the CPUs do."""
    host = nfv_host(name)
    host.numa_cells = {
        node: (f"{node * CELL_CPUS}-{(node + 1) * CELL_CPUS - 1}", CELL_KIB) for node in sorted(host.numa_cells)
    }
    return host


@contextlib.contextmanager
def cluster(database_url: str, tmp: Path, config: SoakConfig, say: Callable[[str], None]) -> Iterator[Cluster]:
    """The serve processes, the hosts with their agents, the aliases and flavors; all stopped afterwards."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "xdg-config"), XDG_DATA_HOME=str(tmp / "xdg-data"))
    for var in ("EPA_URL", "EPA_TOKEN"):
        env.pop(var, None)
    (tmp / "proc").mkdir(parents=True, exist_ok=True)
    (tmp / "proc" / "meminfo").write_text("MemTotal:       16384000 kB\n")
    engine = sqlalchemy.create_engine(database_url)
    agents: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with api_servers(database_url, tmp / "serve", config.serve_processes, env) as (urls, pids, token):
            say(f"{len(urls)} epa serve processes up")
            c = Cluster(urls, pids, token, engine, tmp, {}, agents)
            with c.admin() as http:
                for alias in ALIASES:
                    must(http.post(f"{urls[0]}/v1/aliases", json=alias), 201)
                for flavor in FLAVORS:
                    must(http.post(f"{urls[0]}/v1/flavors", json=flavor), 201)
                for i in range(config.hosts):
                    name = f"nfv-{i}"
                    host = c.hosts[name] = soak_host(name)
                    render_sysfs(host, tmp / f"{name}-sys")
                    write_node_xml(host, tmp / f"{name}-node.xml")
                    agent_token = must(http.post(f"{urls[0]}/v1/hosts", json={"name": name}), 201)["agent_token"]
                    agents[name] = start_agent(c, name, agent_token, urls[i % len(urls)], config, env)
                wait_until(
                    "every agent's inventory",
                    60.0,
                    lambda: all(reported(http, urls[0], name, len(h.functions)) for name, h in c.hosts.items()),
                    c,
                )
            say(f"{len(agents)} agents reported their hosts")
            yield c
    finally:
        stop(list(agents.values()))
        engine.dispose()


def start_agent(
    c: Cluster, name: str, token: str, url: str, config: SoakConfig, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    specs = [arg for spec in SPECS for arg in ("--device-spec", spec)]
    args = [
        *EPA, "agent", "--server", url, "--token", token, "--host-name", name,
        "--sysfs-root", str(c.tmp / f"{name}-sys"), "--procfs-root", str(c.tmp / "proc"),
        "--hypervisor", f"test://{c.tmp / f'{name}-node.xml'}",
        "--interval", str(config.agent_interval), *specs,
    ]  # fmt: skip
    return start(args, c.tmp / f"agent-{name}.log", env)


def must(resp: httpx.Response, status: int) -> Any:
    if resp.status_code != status:
        raise RuntimeError(f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}")
    return resp.json()


def reported(http: httpx.Client, url: str, name: str, functions: int) -> bool:
    host = must(http.get(f"{url}/v1/hosts/{name}"), 200)
    return bool(host["device_total"] == functions)


def wait_until(what: str, seconds: float, probe: Callable[[], bool], c: Cluster) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        for name, agent in c.agents.items():
            if agent.poll() is not None:
                raise RuntimeError(f"the agent of {name} exited with {agent.returncode}:\n{tail(c, name)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.2)


def tail(c: Cluster, host: str) -> str:
    return (c.tmp / f"agent-{host}.log").read_text()[-3000:]


# -- running -------------------------------------------------------------------------------------------


def run_clients(c: Cluster, config: SoakConfig, ledger: Ledger) -> tuple[list[Client], float]:
    """``config.clients`` threads sharing ``config.operations`` creates and deletes; the wall time."""
    clients = [Client(n, c.urls, c.token, config, ledger) for n in range(config.clients)]

    def work(i: int, tickets: Tickets, _tally: Tally) -> None:
        client = clients[i]
        with httpx.Client(headers=client.headers, timeout=120) as http:
            while tickets.take() is not None:
                client.step(http)

    _, elapsed = run_workers(config.clients, work, Tickets(config.operations, float("inf")))
    return clients, elapsed


def drain(c: Cluster, clients: Sequence[Client], ledger: Ledger) -> float:
    """Delete every server the clients still have, eight at a time; the wall time."""
    left = [(client, server_id) for client in clients for server_id in client.own]
    for client in clients:
        client.own = []

    def work(_i: int, tickets: Tickets, _tally: Tally) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {c.token}"}, timeout=120) as http:
            while (n := tickets.take()) is not None:
                client, server_id = left[n]
                client.delete(http, server_id)

    # Drain deletes are recorded apart from the soak's operations.
    _, elapsed = run_workers(8, work, Tickets(len(left), float("inf")))
    return elapsed


def busy_servers(c: Cluster) -> list[sqlalchemy.Row[Any]]:
    with c.engine.connect() as db:
        return list(
            db.execute(
                sqlalchemy.text(
                    "SELECT s.id, s.name, s.status, s.status_reason, h.name AS host FROM servers s "
                    "LEFT JOIN hosts h ON h.id = s.host_id WHERE s.status IN :busy ORDER BY s.updated_at"
                ).bindparams(sqlalchemy.bindparam("busy", expanding=True)),
                {"busy": list(BUSY)},
            )
        )


def quiesce(c: Cluster, seconds: float) -> tuple[float, list[str]]:
    """Wait until no server is scheduled, building or deleting; the wait and the servers still busy then."""
    t0 = time.perf_counter()
    deadline = time.monotonic() + seconds
    while True:
        busy = busy_servers(c)
        if not busy:
            return time.perf_counter() - t0, []
        for name, agent in c.agents.items():
            if agent.poll() is not None:
                return time.perf_counter() - t0, [f"the agent of {name} exited with {agent.returncode}"]
        if time.monotonic() > deadline:
            return time.perf_counter() - t0, [
                f"{r.name} ({r.id}) on {r.host}: {r.status} {r.status_reason}" for r in busy
            ]
        time.sleep(0.25)


# -- checking --------------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def rows(db: sqlalchemy.Connection, sql: str) -> list[sqlalchemy.Row[Any]]:
    return list(db.execute(sqlalchemy.text(sql)))


def device_checks(db: sqlalchemy.Connection, live: Sequence[str]) -> list[Check]:
    """The claims and device statuses agree with each other, with the PF/VF rule and with the servers."""
    doubles = rows(db, "SELECT device_id, count(*) AS n FROM claims GROUP BY device_id HAVING count(*) > 1")
    unclaimed = rows(
        db,
        "SELECT h.name AS host, d.address, d.status, d.owner FROM devices d JOIN hosts h ON h.id = d.host_id "
        "LEFT JOIN claims c ON c.device_id = d.id WHERE d.status IN ('claimed', 'allocated') AND c.id IS NULL",
    )
    stray = rows(
        db,
        "SELECT h.name AS host, d.address, d.status, d.owner, c.server_id FROM claims c "
        "JOIN devices d ON d.id = c.device_id JOIN hosts h ON h.id = d.host_id "
        "WHERE d.status NOT IN ('claimed', 'allocated') OR d.owner IS NULL OR d.owner <> c.server_id",
    )
    owners = rows(
        db,
        "SELECT h.name AS host, d.address, d.status, d.owner FROM devices d JOIN hosts h ON h.id = d.host_id "
        "WHERE d.owner IS NOT NULL AND d.status NOT IN ('claimed', 'allocated')",
    )
    both = rows(
        db,
        "SELECT h.name AS host, pf.address AS pf, vf.address AS vf FROM devices vf "
        "JOIN devices pf ON pf.host_id = vf.host_id AND pf.address = vf.parent_addr JOIN hosts h ON h.id = pf.host_id "
        "WHERE vf.status IN ('claimed', 'allocated') AND pf.status IN ('claimed', 'allocated')",
    )
    # unavailable is derived: a free PF is unavailable exactly while one of its VFs is in use, a free VF exactly
    # while its PF is; nothing else is ever unavailable.
    derived = rows(
        db,
        "SELECT h.name AS host, d.address, d.dev_type, d.status, "
        "EXISTS (SELECT 1 FROM devices v WHERE v.host_id = d.host_id AND v.parent_addr = d.address "
        "        AND v.status IN ('claimed', 'allocated')) AS vf_busy, "
        "EXISTS (SELECT 1 FROM devices p WHERE p.host_id = d.host_id AND p.address = d.parent_addr "
        "        AND p.status IN ('claimed', 'allocated')) AS pf_busy "
        "FROM devices d JOIN hosts h ON h.id = d.host_id WHERE d.status IN ('available', 'unavailable')",
    )
    wrong = [
        f"{r.host} {r.address} ({r.dev_type}) is {r.status}"
        + (" while a VF is in use" if r.vf_busy else "")
        + (" while its PF is in use" if r.pf_busy else "")
        for r in derived
        if (r.status == "unavailable") != bool(r.vf_busy or r.pf_busy)
    ]
    held = rows(
        db,
        "SELECT s.id, s.name, s.status, count(*) AS n FROM claims c JOIN servers s ON s.id = c.server_id "
        "GROUP BY s.id, s.name, s.status",
    )
    cells = rows(db, "SELECT s.id, s.name, s.status FROM server_cells c JOIN servers s ON s.id = c.server_id")
    over = rows(
        db,
        "SELECT h.name AS host, n.node, sum(c.cpus) AS cpus, sum(c.memory_mb) AS memory_mb, "
        "min(n.memory_mb) AS total_memory, min(jsonb_array_length(n.cpus)) AS total_cpus "
        "FROM server_cells c JOIN numa_cells n ON n.host_id = c.host_id AND n.node = c.node "
        "JOIN hosts h ON h.id = c.host_id GROUP BY h.name, n.node "
        "HAVING sum(c.cpus) > min(jsonb_array_length(n.cpus)) OR sum(c.memory_mb) > min(n.memory_mb)",
    )
    return [
        Check("no device in two claims", [f"device {r.device_id} in {r.n} claims" for r in doubles]),
        Check(
            "every device in use has its claim",
            [f"{r.host} {r.address} is {r.status} for {r.owner} without a claim" for r in unclaimed]
            + [f"{r.host} {r.address} has an owner ({r.owner}) but is {r.status}" for r in owners],
        ),
        Check(
            "every claim's device is in use by its server",
            [f"{r.host} {r.address} claimed by {r.server_id} is {r.status}, owner {r.owner}" for r in stray],
        ),
        Check("never a PF and its own VF both in use", [f"{r.host} PF {r.pf} and VF {r.vf}" for r in both]),
        Check("unavailable exactly where the PF/VF rule says", wrong),
        Check(
            "only live servers hold devices, CPUs and memory",
            [f"{r.name} ({r.id}) is {r.status} and holds {r.n} device(s)" for r in held if r.status not in live]
            + [f"{r.name} ({r.id}) is {r.status} and holds CPUs/memory" for r in cells if r.status not in live],
        ),
        Check(
            "no NUMA node over its CPUs or memory",
            [f"{r.host} node {r.node}: {r.cpus}/{r.total_cpus} CPUs, {r.memory_mb}/{r.total_memory} MB" for r in over],
        ),
    ]


def server_checks(db: sqlalchemy.Connection, ledger: Ledger) -> list[Check]:
    """Every server a client was given is there, as that client left it, with exactly its devices."""
    found = {
        r.id: r
        for r in rows(
            db,
            "SELECT s.id, s.name, s.status, s.status_reason, s.host_id, s.domain_state, "
            "(SELECT count(*) FROM claims c WHERE c.server_id = s.id) AS devices FROM servers s",
        )
    }
    lost, wrong, devices, builds = [], [], [], []
    for server_id, created in ledger.created.items():
        row = found.get(server_id)
        if row is None:
            lost.append(f"{server_id} (client {created.client}, {created.kind.name}) is not in the database")
            continue
        if created.uncertain:
            continue
        if created.deleted:
            if row.status != "deleted":
                wrong.append(f"{row.name} ({server_id}) was deleted but is {row.status}: {row.status_reason}")
        elif row.status == "active":
            if row.devices != created.kind.devices:
                devices.append(f"{row.name} ({server_id}) holds {row.devices}, its {created.kind.name} wants "
                               f"{created.kind.devices}")  # fmt: skip
            if row.domain_state != "running":
                wrong.append(f"{row.name} ({server_id}) is active but its agent sees its domain {row.domain_state}")
        elif row.status == "error" and row.status_reason:
            if row.host_id is not None:
                builds.append(f"{row.name} ({server_id}): {row.status_reason}")
        else:
            wrong.append(f"{row.name} ({server_id}) is {row.status} ({row.status_reason}); the client left it "
                         f"{created.status}")  # fmt: skip
    unknown = sorted(set(found) - set(ledger.created))
    return [
        Check("no lost server", lost),
        Check("every server as its client left it", wrong),
        Check("every active server holds exactly its devices", devices),
        Check("no build failed on a host", builds),
        Check(
            "no server the clients were not told of", [f"{found[i].name} ({i}) is {found[i].status}" for i in unknown]
        ),
    ]


def drained_checks(db: sqlalchemy.Connection) -> list[Check]:
    """After every server was deleted: nothing held, every device free."""
    left = rows(db, "SELECT name, status, status_reason FROM servers WHERE status <> 'deleted'")
    held = rows(
        db,
        "SELECT h.name AS host, d.address, d.status FROM devices d JOIN hosts h ON h.id = d.host_id "
        "WHERE d.status <> 'available' OR d.owner IS NOT NULL",
    )
    claims = rows(db, "SELECT count(*) AS n FROM claims")[0].n + rows(db, "SELECT count(*) AS n FROM server_cells")[0].n
    return [
        Check("drained: every server deleted", [f"{r.name} is {r.status}: {r.status_reason}" for r in left]),
        Check(
            "drained: every device available again, no claim left",
            [f"{r.host} {r.address} is {r.status}" for r in held] + ([f"{claims} claims/cells left"] if claims else []),
        ),
    ]


def metrics(c: Cluster) -> Counter[str]:
    """The scheduling counters of every serve process, summed."""
    names = ("epa_server_creates", "epa_servers_scheduled", "epa_scheduling_no_valid_host", "epa_claim_conflicts")
    total: Counter[str] = Counter()
    with c.admin() as http:  # /metrics needs the admin token
        for url in c.urls:
            text = must_text(http.get(f"{url}/metrics"))
            for name in names:
                found = re.search(rf"^{name}_total (\S+)$", text, re.MULTILINE)
                if found is None:
                    raise RuntimeError(f"{url}/metrics has no {name}_total")
                total[name] += int(float(found.group(1)))
    return total


def must_text(resp: httpx.Response) -> str:
    if resp.status_code != 200:
        raise RuntimeError(f"{resp.request.url}: {resp.status_code} {resp.text}")
    return resp.text


def metric_checks(counts: Counter[str], ledger: Ledger) -> list[Check]:
    seen = ledger.outcomes.get("create", Counter())
    answered = seen["scheduled"] + seen[NO_VALID_HOST] + seen["gave up (conflicts)"]  # the 201s
    pairs = (
        ("creates", counts["epa_server_creates"], answered),
        ("scheduled", counts["epa_servers_scheduled"], seen["scheduled"]),
        (NO_VALID_HOST, counts["epa_scheduling_no_valid_host"], seen[NO_VALID_HOST]),
    )
    return [
        Check(
            "the API's counters match what the clients saw",
            [
                f"{what}: the API counted {api}, the clients saw {clients}"
                for what, api, clients in pairs
                if api != clients
            ],
        )
    ]


def log_checks(c: Cluster) -> tuple[list[Check], Counter[str]]:
    """No traceback in any log; and the agents' error lines, by kind, for the report."""
    tracebacks = [p.name for p in c.logs() if "Traceback" in p.read_text(errors="replace")]
    errors: Counter[str] = Counter()
    for p in c.logs():
        for line in p.read_text(errors="replace").splitlines():
            if " ERROR " in line:
                errors[re.sub(r"^\S+ \S+ ERROR (server '[^']*' \([^)]*\): )?", "", line)[:160]] += 1
    return [Check("no traceback in any serve or agent log", tracebacks)], errors


# -- the whole soak --------------------------------------------------------------------------------------


@dataclass
class SoakResult:
    config: SoakConfig
    ledger: Ledger
    seconds: float
    quiesce_seconds: float
    drain_seconds: float
    deletes_drained: int
    counters: Counter[str]
    checks: list[Check]
    log_errors: Counter[str]
    released_by_agents: int

    @property
    def operations(self) -> int:
        return self.ledger.count("create") + self.ledger.count("delete")

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and not self.ledger.failures

    def outcome(self, op: str, outcome: str) -> int:
        return self.ledger.outcomes.get(op, Counter())[outcome]


def run_soak(database_url: str, tmp: Path, config: SoakConfig, say: Callable[[str], None] = print) -> SoakResult:
    """Run the soak on the empty PostgreSQL database at ``database_url``, with scratch files in ``tmp``."""
    ledger = Ledger()
    with cluster(database_url, tmp, config, say) as c:
        say(f"{config.clients} clients, {config.operations} creates and deletes ...")
        clients, seconds = run_clients(c, config, ledger)
        ops = ledger.count("create") + ledger.count("delete")
        say(f"... {ops} in {seconds:.1f} s ({ops / seconds:.1f}/s); waiting for the agents")
        quiesce_seconds, stuck = quiesce(c, config.quiesce_s)
        counters = metrics(c)
        with c.engine.connect() as db:
            checks = [Check("quiet: no server left scheduled, building or deleting", stuck)]
            checks += device_checks(db, ("active", "stopped"))
            checks += server_checks(db, ledger)
        checks += metric_checks(counters, ledger)
        # Drain deletes are not the soak's operations: a ledger of their own, failures carried over.
        soak_ledger, drain_ledger = ledger, Ledger(created=ledger.created)
        for client in clients:
            client.ledger = drain_ledger
        drained = sum(len(client.own) for client in clients)
        say(f"deleting the {drained} servers left")
        drain_seconds = drain(c, clients, drain_ledger)
        _, stuck = quiesce(c, config.quiesce_s)
        for kind, n in drain_ledger.failures.items():
            soak_ledger.failures[f"drain {kind}"] += n
        soak_ledger.failure_samples += drain_ledger.failure_samples
        with c.engine.connect() as db:
            checks.append(Check("drained: quiet", stuck))
            checks += drained_checks(db)
            released = rows(db, "SELECT count(*) AS n FROM servers WHERE status = 'deleted' AND host_id IS NOT NULL")
        more, log_errors = log_checks(c)
        checks += more
    return SoakResult(
        config,
        soak_ledger,
        seconds,
        quiesce_seconds,
        drain_seconds,
        drained,
        counters,
        checks,
        log_errors,
        released[0].n,
    )


# -- the benchmark ----------------------------------------------------------------------------------------


def op_rows(result: SoakResult) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    ledger = result.ledger
    every = sorted(x for op in ("create", "delete") for x in ledger.latencies.get(op, ()))
    ops = ["create", *(f"create {k.name}" for k in KINDS), "delete"]
    for op, samples in [*((op, ledger.latencies.get(op, [])) for op in ops), ("all", every)]:
        ordered = sorted(samples)
        outcomes = ledger.outcomes.get(op, Counter()) if op != "all" else Counter()
        failed = sum(n for k, n in ledger.failures.items() if k.startswith(f"{op}:") or op == "all")
        out.append(
            {
                "op": op,
                "count": len(ordered),
                "per_s": len(ordered) / result.seconds,
                "p50_ms": statistics.median(ordered) * 1e3 if ordered else float("nan"),
                "p99_ms": percentile(ordered, 0.99) * 1e3,
                "max_ms": ordered[-1] * 1e3 if ordered else float("nan"),
                "outcomes": ", ".join(f"{k} {v}" for k, v in outcomes.most_common()) or "-",
                "failures": failed,
            }
        )
    return out


def check_rows(result: SoakResult) -> list[dict[str, object]]:
    return [
        {
            "check": c.name,
            "result": "ok" if c.ok else f"FAILED ({len(c.problems)})",
            "first": c.problems[0][:100] if c.problems else "",
        }
        for c in result.checks
    ]


def report(result: SoakResult) -> None:
    config, counters = result.config, result.counters
    emit(
        result_name("soak"),
        f"Soak: {result.operations} creates and deletes by {config.clients} clients through {config.serve_processes} "
        f"epa serve processes on PostgreSQL, {config.hosts} hosts with agents, in {result.seconds:.1f} s "
        f"({result.operations / result.seconds:.1f}/s; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})",
        op_rows(result),
    )
    emit(
        result_name("soak_checks"),
        "Soak checks (straight from the database once the agents were done)",
        check_rows(result),
    )
    print(
        f"claim conflicts retried: {counters['epa_claim_conflicts']}; API counters: creates "
        f"{counters['epa_server_creates']}, scheduled {counters['epa_servers_scheduled']}, no valid host "
        f"{counters['epa_scheduling_no_valid_host']}"
    )
    print(
        f"agents done {result.quiesce_seconds:.1f} s after the clients; {result.deletes_drained} servers left were "
        f"deleted in {result.drain_seconds:.1f} s; {result.released_by_agents} servers released by their agents"
    )
    for kind, reason in result.ledger.reasons.items():
        print(f"e.g. {kind}: {reason[:300]}")
    if result.log_errors:
        print("agent/serve log errors:")
        for line, n in result.log_errors.most_common(10):
            print(f"  {n} x {line}")
    for c in result.checks:
        for problem in c.problems[:10]:
            print(f"FAILED {c.name}: {problem}")
    for kind, n in result.ledger.failures.most_common():
        print(f"unclean answers: {n} x {kind}")
    for sample in result.ledger.failure_samples[:5]:
        print(f"  e.g. {sample}")


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so that the finally blocks stop the processes and drop the database.
    raise SystemExit(128 + signum)


def main() -> None:
    why = pg_reachable()
    if why is not None:
        raise SystemExit(f"the soak needs PostgreSQL: {why}")
    config = SoakConfig(operations=max(200, round(OPERATIONS * scale())))
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with tempfile.TemporaryDirectory(prefix="epa-bench-soak-") as tmp, pg_database("epa_bench_soak") as url:
            result = run_soak(url, Path(tmp), config, lambda line: print(line, flush=True))
    finally:
        signal.signal(signal.SIGTERM, previous)
    report(result)
    if not result.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
