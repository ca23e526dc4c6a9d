"""A fleet of simulated hosts on one PostgreSQL behind three ``epa serve`` processes: heartbeats at a
realistic rate, 1% of the hosts changing their inventory per minute, clients creating and deleting
servers. Reports what the control plane absorbs and what it costs.

The fleet is loaded straight into PostgreSQL: one template host per shape goes through the real report
path (discovery of a simulated /sys, device_spec, ``apply_report``), then ``INSERT ... SELECT`` copies
its rows to every host of that shape. Agents are simulated by a small asyncio HTTP/1.1 client (keep-alive
connections, no framework), so that the load generator leaves the cores to the server side.

EPA_BENCH_SCALE=0.05 runs 5,000 hosts for a shorter time. EPA_FLEET_COMPARE=DIR also runs heartbeats alone
against serve processes running another tree's ``src`` (``git archive main src | tar -x -C DIR``) and this
one's, alternately, on the same database: before and after, measured in one run."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx
from sqlalchemy import text

from bench.create_throughput import cpu_seconds
from bench.inventory_ingest import build_report, pg_database, pg_reachable
from bench.processes import api_servers
from bench.report import emit, scale
from epa.client import inventory_json
from epa.domain.alias import parse_aliases
from epa.domain.flavor import Flavor
from epa.domain.host import HostReport
from epa.inventory import Database, apply_report, create_alias, create_flavor, create_host, delete_host
from epa.inventory.aliases import known_aliases
from epa.inventory.snapshots import load_snapshots
from epa.service.scheduling import SchedulingService
from epa.simulate.hosts import gpu_host, nfv_host

HOSTS = 100_000
# An agent scanning every 30 s and beating every scan: 100k hosts send 3,333 heartbeats/s.
BEAT_INTERVAL_S = 30.0
CHANGING_PER_MINUTE = 0.01
RUN_SECONDS = 90.0
API_PROCESSES = 3
# Keep-alive connections per API process for the fleet's life; heartbeats alone use more, so that the servers,
# not the number of requests in flight (each waits for its batch's commit, 20 ms and more), set the rate.
CONNECTIONS_PER_PROCESS = 24
SATURATING_CONNECTIONS_PER_PROCESS = 64
QUIET_DECISIONS = 200
COMPARE_ENV = "EPA_FLEET_COMPARE"
CREATORS = 4
MEMORY_SAMPLE = 10_000
# Longer than the whole benchmark (loading 100k hosts into three views takes minutes on 2 shared cores), so
# that no host times out or comes back during it only because the benchmark took its time to start: the
# feed then carries the changes the load makes, nothing else.
AGENT_TIMEOUT_S = 1800
SPECS = (
    '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet1"}',
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"vendor_id": "10de"}',
)
# Shape of host i by i % 10: NFV (86 functions, 67 assignable), GPU (10, 4 A100s), plain compute
# (the GPU box's 10 functions, none assignable).
SHAPES = ("nfv", "gpu", "compute", "compute", "gpu", "compute", "compute", "compute", "compute", "compute")


def name_of(i: int) -> str:
    return f"h{i:06d}"


def token_of(name: str) -> str:
    return f"bench-agent-token-{name}"


# -- loading the fleet -------------------------------------------------------------------------------------


def reports(tmp: Path) -> dict[str, HostReport]:
    nfv = build_report(nfv_host(), tmp / "nfv", SPECS)
    gpu = build_report(gpu_host(), tmp / "gpu", SPECS)
    compute = build_report(gpu_host(), tmp / "compute", ())
    return {"nfv": nfv, "gpu": gpu, "compute": compute}


def load_fleet(db: Database, shapes: dict[str, HostReport], hosts: int) -> float:
    """``hosts`` hosts in the database, each a copy of its shape's template; seconds it took. Their last
    reports are spread over the last 100 s, as in a fleet that has been running."""
    t0 = time.perf_counter()
    for shape, report in shapes.items():
        create_host(db, f"tpl-{shape}")
        apply_report(db, f"tpl-{shape}", 0, report)
    shape_case = "CASE " + " ".join(f"WHEN g % 10 = {i} THEN 'tpl-{s}'" for i, s in enumerate(SHAPES)) + " END"
    with db.engine.begin() as c:
        c.execute(
            text(
                "CREATE TEMP TABLE fleet AS SELECT g, 'h' || lpad(g::text, 6, '0') AS name, "  # noqa: S608 - constants
                f"{shape_case} AS template FROM generate_series(0, :n - 1) g"
            ),
            {"n": hosts},
        )
        c.execute(
            text(
                "INSERT INTO hosts (name, enabled, generation, last_report_at, created_at, claim_generation, "
                "change_seq, change_xid) SELECT name, true, 1, now() - (g % 100) * interval '1 second', now(), 0, "
                "nextval('host_change_seq'), "
                "pg_current_xact_id()::text::bigint FROM fleet ORDER BY g"
            )
        )
        c.execute(
            text(
                "CREATE TEMP TABLE pairs AS SELECT h.id AS host_id, t.id AS template_id FROM fleet f "
                "JOIN hosts h ON h.name = f.name JOIN hosts t ON t.name = f.template"
            )
        )
        c.execute(
            text(
                "INSERT INTO numa_cells (host_id, node, socket, cpus, memory_mb) SELECT p.host_id, c.node, "
                "c.socket, c.cpus, c.memory_mb FROM pairs p JOIN numa_cells c ON c.host_id = p.template_id"
            )
        )
        columns = [
            col
            for col in c.execute(
                text("SELECT column_name FROM information_schema.columns WHERE table_name = 'devices'")
            ).scalars()
            if col not in ("id", "host_id")
        ]
        listed = ", ".join(columns)
        prefixed = ", ".join(f"d.{x}" for x in columns)
        c.execute(
            text(
                f"INSERT INTO devices (host_id, {listed}) SELECT p.host_id, {prefixed} "  # noqa: S608 - its columns
                "FROM pairs p JOIN devices d ON d.host_id = p.template_id"
            )
        )
        c.execute(
            text(
                "INSERT INTO tokens (kind, host_id, token_hash, created_at) SELECT 'agent', h.id, "
                "encode(sha256(convert_to('bench-agent-token-' || h.name, 'UTF8')), 'hex'), now() "
                "FROM pairs p JOIN hosts h ON h.id = p.host_id"
            )
        )
    for shape in shapes:
        delete_host(db, f"tpl-{shape}")
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("ANALYZE"))
    return time.perf_counter() - t0


def seed_flavors(db: Database, gpu: HostReport) -> None:
    product = next(d.device.product_id for d in gpu.devices if d.assignable)
    create_alias(db, parse_aliases([{"name": "a100", "vendor_id": "10de", "product_id": product}])["a100"])
    create_flavor(db, Flavor.parse({"name": "small", "vcpus": 2, "memory_mb": 2048}, known_aliases(db)))
    create_flavor(
        db,
        Flavor.parse(
            {"name": "gpu", "vcpus": 4, "memory_mb": 8192, "pci_passthrough:alias": "a100:1"}, known_aliases(db)
        ),
    )


# -- memory of a scheduler view ----------------------------------------------------------------------------


def view_memory(db: Database, hosts: int) -> tuple[float, float]:
    """Bytes per host of a scheduler view of ``hosts`` hosts (a sample of the fleet, same mix), traced
    with tracemalloc: the Python objects and the numpy arrays, which trace their buffers too; and the
    seconds the load took (untraced)."""
    names = [name_of(i) for i in range(hosts)]
    t0 = time.perf_counter()
    snapshots = load_snapshots(db, names)
    load_s = time.perf_counter() - t0
    service = SchedulingService(db)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    service._apply(snapshots)  # what a refresh does with them
    del snapshots
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(service.scheduler.hosts) == hosts
    return (after - before) / hosts, load_s


def quiet_decisions(db: Database, hosts: int) -> dict[str, tuple[float, float]]:
    """Decision time (wall and CPU p99, seconds) per flavor of a view of ``hosts`` hosts, in this process with
    nothing else running in it. The fleet's hosts are copies of its three templates, so the view is built from
    their snapshots under the fleet's names (loading 100,000 from the database takes minutes). Every other
    decision's placement is taken out of the view, as a create does."""
    templates = {s.name: s for s in load_snapshots(db, [name_of(i) for i in range(len(SHAPES))])}
    now = datetime.now(UTC)
    service = SchedulingService(db)
    service._apply(
        [dataclasses.replace(templates[name_of(i % 10)], name=name_of(i), last_report_at=now) for i in range(hosts)]
    )
    out = {}
    for flavor in ("small", "gpu"):
        _, request = service.build(flavor, [])
        wall, cpu = [], []
        for k in range(QUIET_DECISIONS):
            t0, c0 = time.perf_counter(), time.thread_time()
            selection = service.scheduler.select(request, service.clock())
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - t0)
            if k % 2 == 0 and selection.ranked:
                service.scheduler.account(selection.ranked[0].placement)
        out[flavor] = (pct(wall, 0.99), pct(cpu, 0.99))
    return out


# -- the load ----------------------------------------------------------------------------------------------


class Conn:
    """One keep-alive HTTP/1.1 connection: a request at a time, the answer read by Content-Length."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, method: str, path: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            key, _, value = line.partition(b":")
            if key.lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), payload


@dataclass
class Load:
    hosts: int
    generation: dict[str, int] = field(default_factory=dict)
    variant: dict[str, int] = field(default_factory=dict)
    beat_latency: list[float] = field(default_factory=list)
    beats: int = 0
    beat_errors: int = 0
    beat_conflicts: int = 0
    reports: int = 0
    report_errors: int = 0
    creates: int = 0
    create_latency: list[float] = field(default_factory=list)
    create_failures: int = 0
    deletes: int = 0


def report_bodies(shapes: dict[str, HostReport]) -> dict[str, tuple[str, str]]:
    """Per shape, two inventories to alternate between: the full one and one without its last function."""
    out = {}
    for shape, r in shapes.items():
        full = json.dumps(inventory_json(r.numa_cells, r.devices))[1:]
        less = json.dumps(inventory_json(r.numa_cells, r.devices[:-1]))[1:]
        out[shape] = (full, less)
    return out


async def beater(load: Load, conn: Conn, names: Sequence[str], period: float, stop: float) -> None:
    """Heartbeats for ``names`` in turn, one every ``period`` seconds (sooner when behind)."""
    nxt = time.perf_counter()
    i = 0
    while time.perf_counter() < stop:
        name = names[i % len(names)]
        i += 1
        body = b'{"generation": %d}' % load.generation.get(name, 1)
        t0 = time.perf_counter()
        status, payload = await conn.call("POST", f"/v1/hosts/{name}/heartbeat", token_of(name), body)
        load.beat_latency.append(time.perf_counter() - t0)
        if status == 200:
            load.beats += 1
        elif status == 409:
            load.beat_conflicts += 1
            load.generation[name] = json.loads(payload)["error"]["current_generation"]
        else:
            load.beat_errors += 1
        nxt += period
        delay = nxt - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def reporter(
    load: Load, conn: Conn, bodies: dict[str, tuple[str, str]], rate: float, stop: float, rnd: random.Random
) -> None:
    """Full reports of changed inventories at ``rate`` per second, on random hosts."""
    while time.perf_counter() < stop:
        await asyncio.sleep(rnd.expovariate(rate))
        i = rnd.randrange(load.hosts)
        name = name_of(i)
        variant = 1 - load.variant.get(name, 0)
        generation = load.generation.get(name, 1)
        body = (f'{{"generation": {generation}, ' + bodies[SHAPES[i % 10]][variant]).encode()
        status, payload = await conn.call("PUT", f"/v1/hosts/{name}/inventory", token_of(name), body)
        if status == 200:
            load.generation[name] = json.loads(payload)["generation"]
            load.variant[name] = variant
            load.reports += 1
        else:
            load.report_errors += 1


async def creator(load: Load, conn: Conn, admin: str, n: int, stop: float) -> None:
    """Create a server (alternately small and with a GPU), then delete it (force: no agent runs here)."""
    k = 0
    while time.perf_counter() < stop:
        k += 1
        flavor = "gpu" if k % 2 else "small"
        body = json.dumps({"name": f"c{n}-{k}", "flavor": flavor}).encode()
        t0 = time.perf_counter()
        status, payload = await conn.call("POST", "/v1/servers", admin, body)
        load.create_latency.append(time.perf_counter() - t0)
        server = json.loads(payload) if status == 201 else {}
        if status != 201 or server.get("status") != "scheduled":
            load.create_failures += 1
            if status == 201:
                await conn.call("DELETE", f"/v1/servers/{server['id']}?force=true", admin)
            continue
        load.creates += 1
        status, _ = await conn.call("DELETE", f"/v1/servers/{server['id']}?force=true", admin)
        load.deletes += status < 300


async def run_load(
    urls: list[str], admin: str, load: Load, bodies: dict[str, tuple[str, str]], seconds: float, mixed: bool
) -> float:
    """Heartbeats alone, as fast as the servers answer (``mixed`` False: what they absorb, and at what
    cost), or the fleet's life: heartbeats at the agents' rate, inventory changes, creates and deletes."""
    stop = time.perf_counter() + seconds
    ports = [int(u.rsplit(":", 1)[1]) for u in urls]
    conns = len(ports) * (CONNECTIONS_PER_PROCESS if mixed else SATURATING_CONNECTIONS_PER_PROCESS)
    names = [name_of(i) for i in range(load.hosts)]
    random.Random(1).shuffle(names)
    # Each connection's share of the fleet's beat rate (0: no pacing).
    period = BEAT_INTERVAL_S * conns / load.hosts if mixed else 0.0
    rnd = random.Random(2)
    tasks = [
        beater(load, Conn("127.0.0.1", ports[c % len(ports)]), names[c::conns], period, stop) for c in range(conns)
    ]
    rate = load.hosts * CHANGING_PER_MINUTE / 60
    tasks += (
        []
        if not mixed
        else [reporter(load, Conn("127.0.0.1", ports[k % len(ports)]), bodies, rate / 3, stop, rnd) for k in range(3)]
    )
    tasks += (
        []
        if not mixed
        else [creator(load, Conn("127.0.0.1", ports[k % len(ports)]), admin, k, stop) for k in range(CREATORS)]
    )
    t0 = time.perf_counter()
    await asyncio.gather(*tasks)
    return time.perf_counter() - t0


async def first_creates(urls: list[str], admin: str) -> list[tuple[int, bytes]]:
    """One create per process: each loads its whole view at its first."""
    calls = [
        Conn("127.0.0.1", int(u.rsplit(":", 1)[1])).call(
            "POST", "/v1/servers", admin, json.dumps({"name": f"warm-{i}", "flavor": "small"}).encode()
        )
        for i, u in enumerate(urls)
    ]
    return list(await asyncio.gather(*calls))


def compare(url: str, data_dir: Path, hosts: int, seconds: float, baseline: Path) -> list[tuple[str, object, str]]:
    """Heartbeats alone against serve processes running ``baseline`` (a tree holding ``epa``), then this tree's,
    twice over: rows of (absorbed/s, serve CPU ms per heartbeat, load average after)."""
    rows: list[tuple[str, object, str]] = []
    for n in (1, 2):
        for label, tree in (("baseline", baseline), ("this tree", None)):
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            if tree is not None:
                env["PYTHONPATH"] = str(tree)
            extra = ("--agent-timeout", str(AGENT_TIMEOUT_S))
            with api_servers(url, data_dir, API_PROCESSES, env=env, extra=extra) as (urls, pids, admin):
                loop = asyncio.new_event_loop()
                load = Load(hosts)
                cpu0 = sum(cpu_seconds(p) for p in pids)
                wall = loop.run_until_complete(run_load(urls, admin, load, {}, seconds, mixed=False))
                cpu = sum(cpu_seconds(p) for p in pids) - cpu0
                loop.close()
            value = f"{load.beats / wall:.0f} / {cpu / max(load.beats, 1) * 1e3:.3f} / {os.getloadavg()[0]:.1f}"
            rows.append((f"compare {n}, {label}: beats/s / serve CPU ms each / load", value, ""))
            print(rows[-1], flush=True)
    return rows


# -- measuring the servers -----------------------------------------------------------------------------------


def scrape(url: str, admin: str) -> dict[str, float]:
    out: dict[str, float] = {}
    answer = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    answer.raise_for_status()  # /metrics takes the admin token: without it every figure read 0
    for line in answer.text.splitlines():
        if line.startswith("epa_") and " " in line:
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def decision_p99_bound(before: list[dict[str, float]], after: list[dict[str, float]]) -> tuple[float, int]:
    """The histogram bucket (seconds) under which 99% of the run's decisions fell, over all processes."""
    buckets: dict[float, float] = {}
    for b, a in zip(before, after, strict=True):
        for key, value in a.items():
            if key.startswith("epa_scheduling_decision_seconds_bucket"):
                le = key.split('le="', 1)[1].split('"', 1)[0]
                bound = float("inf") if le == "+Inf" else float(le)
                buckets[bound] = buckets.get(bound, 0.0) + value - b.get(key, 0.0)
    total = buckets.get(float("inf"), 0.0)
    for bound in sorted(buckets):
        if total and buckets[bound] >= 0.99 * total:
            return bound, int(total)
    return float("inf"), int(total)


def database_cpu_seconds(db: Database) -> float:
    """CPU seconds so far of the PostgreSQL backends connected to ``db``'s database (the API processes' pools
    keep theirs for the whole run; other databases on the server are not counted)."""
    with db.engine.connect() as c:
        pids = c.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
    return total


def own_cpu_seconds() -> float:
    """CPU seconds of this process (the load generator) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def ms(samples: Sequence[float], q: float) -> float:
    return round(pct(samples, q) * 1e3, 1)


def pct(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    factor = scale()
    hosts = max(2000, round(HOSTS * factor))
    seconds = max(20.0, RUN_SECONDS * factor)
    why = pg_reachable()
    if why is not None:
        raise SystemExit(f"the fleet benchmark needs PostgreSQL: {why}")
    previous = signal.signal(signal.SIGTERM, _terminate)
    t_all = time.perf_counter()
    load0 = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="epa-bench-fleet-") as tmp_name, pg_database("epa_bench_fleet") as url:
            tmp = Path(tmp_name)
            shapes = reports(tmp)
            db = Database.connect(url)
            db.migrate()
            load_s = load_fleet(db, shapes, hosts)
            seed_flavors(db, shapes["gpu"])
            print(f"{hosts} hosts loaded in {load_s:.0f} s", flush=True)
            sample = min(hosts, MEMORY_SAMPLE)
            per_host, view_load_s = view_memory(db, sample)
            print(f"scheduler view: {per_host:.0f} bytes per host ({sample} hosts traced)", flush=True)
            quiet = quiet_decisions(db, hosts)
            quiet_load = os.getloadavg()[0]
            print(f"quiet decisions: {quiet}", flush=True)
            t0 = time.perf_counter()
            timeout = ("--agent-timeout", str(AGENT_TIMEOUT_S))
            with api_servers(url, tmp / "serve", API_PROCESSES, extra=timeout) as (urls, pids, admin):
                start_s = time.perf_counter() - t0
                # Each process loads its view at its first create.
                for u in urls:
                    scrape(u, admin)
                loop = asyncio.new_event_loop()
                load = Load(hosts)
                warm = loop.run_until_complete(first_creates(urls, admin))
                assert all(status == 201 for status, _ in warm), warm
                print(f"3 API processes up and loaded in {time.perf_counter() - t0:.0f} s", flush=True)
                bodies = report_bodies(shapes)
                cpu0 = [cpu_seconds(p) for p in pids]
                busy0 = machine_busy_seconds()
                own0 = own_cpu_seconds()
                pg0 = database_cpu_seconds(db)
                alone = Load(hosts)
                alone_wall = loop.run_until_complete(run_load(urls, admin, alone, bodies, seconds / 3, mixed=False))
                busy = machine_busy_seconds() - busy0
                cpu = sum(cpu_seconds(p) for p in pids) - sum(cpu0)
                generator = own_cpu_seconds() - own0
                postgres = database_cpu_seconds(db) - pg0
                alone_load = os.getloadavg()[0]
                print(f"heartbeats alone: {alone.beats / alone_wall:.0f}/s", flush=True)
                before = [scrape(u, admin) for u in urls]
                wall = loop.run_until_complete(run_load(urls, admin, load, bodies, seconds, mixed=True))
                after = [scrape(u, admin) for u in urls]
                loop.close()
            baseline = os.environ.get(COMPARE_ENV)
            compared = compare(url, tmp / "serve", hosts, seconds / 3, Path(baseline)) if baseline else []
    finally:
        signal.signal(signal.SIGTERM, previous)
    p99_bound, decisions = decision_p99_bound(before, after)

    def delta(key: str) -> list[float]:
        return [a.get(key, 0.0) - b.get(key, 0.0) for a, b in zip(after, before, strict=True)]

    refresh_s = delta("epa_view_refresh_seconds_total")
    reloaded = delta("epa_view_reloaded_hosts_total")
    checked = delta("epa_view_liveness_checked_total")
    refreshes = delta("epa_view_refreshes_total")
    per_process = len(urls) * wall

    def per_beat(seconds: float) -> float:
        return round(seconds / max(alone.beats, 1) * 1e3, 3)

    table: list[tuple[str, object, str]] = [
        ("hosts", hosts, ""),
        ("heartbeats alone: absorbed/s", round(alone.beats / alone_wall), ">= 2000"),
        ("heartbeats alone: p50 / p99 ms", f"{ms(alone.beat_latency, 0.5)} / {ms(alone.beat_latency, 0.99)}", ""),
        ("heartbeats alone: errors", alone.beat_errors, "0"),
        ("serve CPU ms per heartbeat (3 processes)", round(cpu / max(alone.beats, 1) * 1e3, 2), ""),
        (
            "PostgreSQL CPU ms per heartbeat (this database's backends)",
            round(postgres / max(alone.beats, 1) * 1e3, 3),
            "",
        ),
        ("load generator CPU ms per heartbeat", round(generator / max(alone.beats, 1) * 1e3, 3), ""),
        ("machine CPU ms per heartbeat (all, shared)", round(busy / max(alone.beats, 1) * 1e3, 2), ""),
        ("heartbeats alone: load average after", round(alone_load, 1), ""),
        ("fleet life: heartbeats offered/s (every 30 s)", round(hosts / BEAT_INTERVAL_S), ""),
        ("fleet life: heartbeats absorbed/s", round(load.beats / wall), ""),
        ("fleet life: heartbeat p50 / p99 ms", f"{ms(load.beat_latency, 0.5)} / {ms(load.beat_latency, 0.99)}", ""),
        ("fleet life: heartbeat errors / conflicts", f"{load.beat_errors} / {load.beat_conflicts}", "0 / -"),
        (
            "inventory changes/s (full reports)",
            round(load.reports / wall, 1),
            f"{hosts * CHANGING_PER_MINUTE / 60:.1f}",
        ),
        ("report errors", load.report_errors, "0"),
        ("refreshes per process per s", round(sum(refreshes) / per_process, 2), ""),
        ("refresh ms per process per s", round(sum(refresh_s) / per_process * 1e3, 1), ""),
        ("hosts reloaded per process per s", round(sum(reloaded) / per_process, 1), "~ changes/s"),
        ("liveness read back per process per s", round(sum(checked) / per_process, 1), "hosts/timeout"),
        ("creates/s (each then deleted)", round(load.creates / wall, 1), ""),
        ("create failures", load.create_failures, "0"),
        ("create p99 ms (HTTP, with the claim)", round(pct(load.create_latency, 0.99) * 1e3, 1), ""),
        ("decision p99 <= bucket ms (fleet life, 3 processes)", p99_bound * 1e3, "<= 10"),
        *(
            (f"decision p99 quiet, in-process, {flavor}: wall / CPU ms", f"{wall * 1e3:.1f} / {cpu * 1e3:.1f}", "<= 10")
            for flavor, (wall, cpu) in quiet.items()
        ),
        ("load average during the quiet decisions", round(quiet_load, 1), ""),
        ("decisions measured", decisions, ""),
        ("scheduler memory bytes per host", round(per_host), "<= 2048"),
        ("fleet load s / API start s", f"{load_s:.0f} / {start_s:.0f}", ""),
        (f"view load s ({sample} hosts)", round(view_load_s, 1), ""),
        ("run s / load average at start", f"{wall:.0f} / {load0:.1f}", ""),
        *compared,
    ]
    rows: list[dict[str, object]] = [{"measure": m, "value": v, "target": t} for m, v, t in table]
    emit(
        "fleet_compare" if compared else "fleet",
        f"A fleet of {hosts} hosts, 3 API processes on one PostgreSQL, {os.cpu_count()} cores "
        f"(whole benchmark {time.perf_counter() - t_all:.0f} s)",
        rows,
    )
    if load.beat_errors or load.report_errors:
        print("errors during the run: see the serve logs", file=sys.stderr)
