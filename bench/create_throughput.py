"""Server creates per second end to end (httpx clients -> ``epa serve`` processes -> the database) on SQLite
and PostgreSQL with 1, 8 and 32 concurrent clients, beside the raw rate of ``claims.claim`` on the same kind of
database in the same run: the ceiling the API path is compared with.

Hosts are NFV servers (``nfv_host`` with two 64-CPU, 256 GiB NUMA cells) scanned once and reported under many
names. Each setup gets a fresh database, so no run sees another's servers, and each run stops before it could
use up the QAT VFs, which are what runs out first. Every answer but a 201 with a ``scheduled`` server is an error.
``cpu`` is the CPU time the ``epa serve`` processes and this process (the clients) used, in % of one core.
``EPA_BENCH_SCALE=0.2`` runs a smoke version."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from bench.inventory_ingest import build_report, pg_database, pg_reachable, scale
from bench.processes import api_servers
from bench.report import emit
from epa.domain.address import PciAddress
from epa.domain.alias import parse_aliases
from epa.domain.device import DevType
from epa.domain.flavor import Flavor
from epa.domain.host import HostReport
from epa.domain.server import ClaimedDevice
from epa.inventory import Database, apply_report, create_alias, create_flavor, create_host, get_flavor
from epa.inventory.aliases import known_aliases
from epa.inventory.claims import ClaimPlan, NewServer, claim
from epa.scheduler.request import build_request
from epa.simulate.hosts import nfv_host

HOSTS = 200
RUN_SECONDS = 12.0
RAW_SECONDS = 6.0
CLIENTS = (1, 8, 32)
RAW_THREADS = (1, 8)
PORT_RUN_CLIENTS = 8  # the one run per setup whose servers also take a direct port on physnet1
PG_PROCESSES = (1, 3)
# Unmeasured creates per process before its first run: its first request loads every host's snapshot.
WARMUP_PER_PROCESS = 8
# A run stops at its share of the QAT VFs less this margin, so that none ends in "no valid host".
HEADROOM = 0.9

# Like tests/support/reports.NFV_SPECS: the QAT VFs, physnet1 on the first X710 port, physnet2 and the T4.
SPECS = [
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"address": "0000:18:00.0", "physical_network": "physnet1"}',
    '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet2", "trusted": "yes"}',
    '{"vendor_id": "10de"}',
]
QAT_ALIAS = {
    "name": "qat",
    "vendor_id": "8086",
    "product_id": "37c9",
    "device_type": "type-VF",
    "numa_policy": "required",
}
FLAVOR = {"name": "vnf", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": "qat:1"}
DIRECT_PORT = {"physnet": "physnet1", "vnic_type": "direct"}
CELL_CPUS = 64
CELL_KIB = 256 * 1024 * 1024


# -- the inventory -------------------------------------------------------------------------------------


def nfv_report(tmp: Path) -> HostReport:
    """One NFV host rendered as /sys and scanned, with big NUMA cells; every seeded host reports it."""
    host = nfv_host("template")
    host.numa_cells = {
        node: (f"{node * CELL_CPUS}-{(node + 1) * CELL_CPUS - 1}", CELL_KIB) for node in sorted(host.numa_cells)
    }
    return build_report(host, tmp / "sys", SPECS)


@dataclass(frozen=True)
class Capacity:
    """Per host: servers of flavor ``vnf`` it can take (one per QAT VF: CPUs and memory last longer), and
    direct ports on physnet1 (its VFs; the PF is assignable too, but only to direct-physical ports)."""

    servers: int
    ports: int

    @classmethod
    def of(cls, report: HostReport) -> Capacity:
        qat = sum(1 for c in report.devices if c.assignable and c.device.product_id == "37c9")
        cpus_per_server, memory_per_server = FLAVOR["vcpus"], FLAVOR["memory_mb"]
        assert isinstance(cpus_per_server, int) and isinstance(memory_per_server, int)
        by_cells = sum(min(len(c.cpus) // cpus_per_server, c.memory_mb // memory_per_server) for c in report.numa_cells)
        ports = sum(
            1
            for c in report.devices
            if c.assignable and c.device.dev_type is DevType.VF and c.tags.get("physical_network") == "physnet1"
        )
        return cls(min(qat, by_cells), ports)


def seed(db: Database, report: HostReport, hosts: int) -> None:
    """The alias, the flavor and ``hosts`` hosts reporting ``report``, through the inventory layer."""
    create_alias(db, parse_aliases([QAT_ALIAS])["qat"])
    create_flavor(db, Flavor.parse(FLAVOR, known_aliases(db)))
    for i in range(hosts):
        name = f"nfv-{i:04d}"
        create_host(db, name)
        apply_report(db, name, 0, report)


@contextlib.contextmanager
def database(backend: str, tmp: Path, label: str) -> Iterator[Database]:
    """A fresh, migrated database of ``backend``, disposed (PostgreSQL: dropped) however the block ends."""
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp / label / 'epa.db'}"
        else:
            url = stack.enter_context(pg_database(f"epa_bench_create_{label.replace('-', '_')}"))
        db = Database.connect(url)
        stack.callback(db.dispose)
        db.migrate()
        yield db


# -- measuring -------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the workers of one run saw: latencies of every answer, and what was not a scheduled server."""

    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, seconds: float, failure: str | None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if failure is None:
                self.ok += 1
            else:
                self.failures[failure] += 1


class Tickets:
    """Hands out request numbers until the budget or the deadline is reached."""

    def __init__(self, budget: int, seconds: float) -> None:
        self._budget = budget
        self._seconds = seconds
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._deadline = 0.0

    def start(self) -> None:
        self._deadline = time.perf_counter() + self._seconds

    def take(self) -> int | None:
        with self._lock:
            if time.perf_counter() >= self._deadline:
                return None
            n = next(self._next)
            return n if n < self._budget else None


def run_workers(n: int, work: Callable[[int, Tickets, Tally], None], tickets: Tickets) -> tuple[Tally, float]:
    """``n`` threads running ``work`` from one start line; the tally and the wall time until the last ends."""
    tally = Tally()
    barrier = threading.Barrier(n + 1)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        barrier.wait()
        try:
            work(i, tickets, tally)
        except BaseException as e:  # a worker's crash must stop the benchmark, not vanish with its thread
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    tickets.start()
    t0 = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return tally, elapsed


def percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def row(
    path: str,
    backend: str,
    processes: str,
    clients: int,
    request: str,
    tally: Tally,
    elapsed: float,
    cpu: str,
) -> dict[str, object]:
    ordered = sorted(tally.latencies)
    errors = sum(tally.failures.values())
    kinds = ", ".join(f"{k} x{v}" for k, v in tally.failures.most_common())
    return {
        "path": path,
        "backend": backend,
        "procs": processes,
        "clients": clients,
        "request": request,
        "created": tally.ok,
        "seconds": elapsed,
        "per_s": tally.ok / elapsed,
        "p50_ms": statistics.median(ordered) * 1e3 if ordered else float("nan"),
        "p99_ms": percentile(ordered, 0.99) * 1e3,
        "errors": f"{errors} ({kinds})" if errors else "0",
        "cpu": cpu,
        # Other work on the machine shows here: a load above the core count means the run shared its CPUs.
        "load1": os.getloadavg()[0],
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the raw claim rate ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawPlacement:
    host: str
    node: int
    address: PciAddress


def raw_placements(report: HostReport, hosts: int) -> list[RawPlacement]:
    """One QAT VF per claim on the VF's own NUMA node, cycling the hosts so that neighbours differ."""
    qat = [c.device for c in report.devices if c.assignable and c.device.product_id == "37c9"]
    return [
        RawPlacement(f"nfv-{h:04d}", d.numa_node if d.numa_node is not None and d.numa_node >= 0 else 0, d.address)
        for d in qat
        for h in range(hosts)
    ]


def raw_run(
    db: Database, flavor: Flavor, label: str, placements: Sequence[RawPlacement], threads: int, seconds: float
) -> tuple[Tally, float]:
    """``threads`` threads calling ``claim`` with the next of ``placements`` until time or placements run out."""

    def work(_i: int, tickets: Tickets, tally: Tally) -> None:
        while (n := tickets.take()) is not None:
            p = placements[n]
            t0 = time.perf_counter()
            failure = None
            try:
                plan = ClaimPlan(
                    p.host,
                    (p.node,),
                    {p.node: flavor.vcpus},
                    {p.node: flavor.memory_mb},
                    (ClaimedDevice(p.address, 0, label),),
                )
                claim(db, NewServer(f"raw-{threads}-{n}", flavor), plan)
            except Exception as e:  # counted and shown in the table, like an API error
                failure = type(e).__name__
            tally.record(time.perf_counter() - t0, failure)

    return run_workers(threads, work, Tickets(len(placements), seconds))


def bench_raw(backend: str, tmp: Path, report: HostReport, hosts: int, seconds: float) -> list[dict[str, object]]:
    rows = []
    with database(backend, tmp, "raw") as db:
        seed(db, report, hosts)
        flavor = get_flavor(db, "vnf")
        label = build_request(flavor, known_aliases(db)).devices[0].label
        placements = raw_placements(report, hosts)
        share = len(placements) // len(RAW_THREADS)
        for k, threads in enumerate(RAW_THREADS):
            cpu0 = time.process_time()
            tally, elapsed = raw_run(db, flavor, label, placements[k * share : (k + 1) * share], threads, seconds)
            cpu = f"bench {100 * (time.process_time() - cpu0) / elapsed:.0f}%"
            rows.append(row("claims.claim", backend, "in-process", threads, "1 QAT VF", tally, elapsed, cpu))
            print(f"... {backend} raw claims, {threads} thread(s): {tally.ok / elapsed:.1f}/s", flush=True)
    return rows


# -- the API -----------------------------------------------------------------------------------------------


def failure_of(resp: httpx.Response) -> str | None:
    """None for a 201 with a scheduled server; else a short kind of failure for the table."""
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code == 201 and body.get("status") == "scheduled":
        return None
    if resp.status_code == 201:
        return f"201 {body.get('status')}: {str(body.get('status_reason')).split(':')[0]}"
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    return f"{resp.status_code} {code or resp.reason_phrase}"


def api_run(
    urls: Sequence[str], token: str, clients: int, tag: str, ports: list[dict[str, str]], budget: int, seconds: float
) -> tuple[Tally, float]:
    """``clients`` threads, each with its own connection, POSTing /v1/servers round robin over ``urls``."""
    headers = {"Authorization": f"Bearer {token}"}

    def work(i: int, tickets: Tickets, tally: Tally) -> None:
        with httpx.Client(headers=headers, timeout=120) as http:
            k = i
            while (n := tickets.take()) is not None:
                body = {"name": f"{tag}-{n}", "flavor": "vnf", "ports": ports}
                t0 = time.perf_counter()
                try:
                    failure = failure_of(http.post(f"{urls[k % len(urls)]}/v1/servers", json=body))
                except httpx.HTTPError as e:
                    failure = type(e).__name__
                tally.record(time.perf_counter() - t0, failure)
                k += 1

    return run_workers(clients, work, Tickets(budget, seconds))


def bench_api(
    backend: str, processes: int, tmp: Path, report: HostReport, hosts: int, seconds: float
) -> list[dict[str, object]]:
    cap = Capacity.of(report)
    label = f"api-{processes}"
    # Budgets in servers: the port run can use at most the physnet1 VFs, the others share the rest.
    port_budget = int(HEADROOM * cap.ports * hosts)
    warmup = WARMUP_PER_PROCESS * processes
    budget = int((HEADROOM * cap.servers * hosts - port_budget - warmup) // len(CLIENTS))
    rows = []
    with database(backend, tmp, label) as db:
        seed(db, report, hosts)
        url = db.engine.url.render_as_string(hide_password=False)
        with api_servers(url, tmp / label, processes) as (urls, pids, token):
            tally, _ = api_run(urls, token, min(processes, 8), "warmup", [], warmup, 60.0)
            if tally.failures:
                raise SystemExit(f"warm-up creates failed: {dict(tally.failures)}")
            # The port run first, while every host still has its physnet1 VFs and the QAT VFs on their node;
            # its row is shown last.
            plan = [(PORT_RUN_CLIENTS, "vnf + direct port", [DIRECT_PORT])] + [(c, "vnf", []) for c in CLIENTS]
            for clients, request, ports in plan:
                limit = port_budget if ports else budget
                cpu0 = [cpu_seconds(p) for p in pids]
                own0 = time.process_time()
                tally, elapsed = api_run(urls, token, clients, f"c{clients}-{len(ports)}", ports, limit, seconds)
                server_cpu = sum(cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True))
                cpu = (
                    f"servers {100 * server_cpu / elapsed:.0f}%, "
                    f"clients {100 * (time.process_time() - own0) / elapsed:.0f}%"
                )
                rows.append(row("REST API", backend, str(processes), clients, request, tally, elapsed, cpu))
                print(
                    f"... {backend} {processes} process(es), {clients} client(s), {request}: "
                    f"{tally.ok / elapsed:.1f}/s, {sum(tally.failures.values())} error(s)",
                    flush=True,
                )
    return rows[1:] + rows[:1]


# -- the benchmark -----------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so that the finally blocks stop the servers and drop the databases.
    raise SystemExit(128 + signum)


def main() -> None:
    factor = scale()
    hosts = max(20, round(HOSTS * factor))
    seconds = max(2.0, RUN_SECONDS * factor)
    raw_seconds = max(1.5, RAW_SECONDS * factor)
    previous = signal.signal(signal.SIGTERM, _terminate)
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="epa-bench-create-") as tmp_name:
            tmp = Path(tmp_name)
            report = nfv_report(tmp)
            cap = Capacity.of(report)
            print(
                f"{hosts} hosts, each {cap.servers} servers of flavor vnf (QAT VFs) and {cap.ports} physnet1 VFs; "
                f"runs of {seconds:.0f} s (raw claims {raw_seconds:.0f} s)",
                flush=True,
            )
            backends = ["sqlite"]
            why = pg_reachable()
            if why is None:
                backends.append("postgresql")
            else:
                print(f"skipping postgresql: {why}", file=sys.stderr)
            rows: list[dict[str, object]] = []
            for backend in backends:
                rows += bench_raw(backend, tmp / backend, report, hosts, raw_seconds)
                for processes in PG_PROCESSES if backend == "postgresql" else (1,):
                    rows += bench_api(backend, processes, tmp / backend, report, hosts, seconds)
    finally:
        signal.signal(signal.SIGTERM, previous)
    emit(
        "create_throughput",
        f"Server creates per second, REST API vs raw claims ({hosts} NFV hosts, "
        f"{os.cpu_count()} cores, whole benchmark {time.perf_counter() - t0:.0f} s)",
        rows,
    )
    print(f"1-minute load average: {load0:.2f} before the benchmark, {os.getloadavg()[0]:.2f} after")
    for backend in dict.fromkeys(str(r["backend"]) for r in rows):
        raw = max(float(str(r["per_s"])) for r in rows if r["backend"] == backend and r["path"] == "claims.claim")
        api = max(float(str(r["per_s"])) for r in rows if r["backend"] == backend and r["path"] == "REST API")
        print(f"{backend}: best REST API rate {api:.1f}/s is {100 * api / raw:.0f}% of the best raw claim rate")


if __name__ == "__main__":
    main()
