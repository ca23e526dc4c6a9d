"""Ingesting the inventory report of a host with 1,000 PCI functions, on SQLite and PostgreSQL: the first
report, an unchanged re-report, one with 10% of the devices changed, and the unchanged one over HTTP.

Also home to what the inventory benchmarks share: the report an agent would build from a simulated
host, a throw-away PostgreSQL database, and a real ``epa serve`` process to talk to."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy

from bench.report import emit, scale, summary
from epa.client import ApiClient, InventoryResult
from epa.discovery.sysfs import scan_sysfs
from epa.domain.device import PciDevice
from epa.domain.device_spec import classify, parse_device_specs
from epa.domain.host import HostReport, NumaCell, parse_cpulist
from epa.errors import EpaError
from epa.inventory import Database, ReportOutcome, apply_report, create_host
from epa.simulate.hosts import sriov_scale_host
from epa.simulate.model import SimHost
from epa.simulate.sysfs_tree import render_sysfs

PG_URL_ENV = "EPA_BENCH_PG_URL"
# The server's maintenance database; each run creates a database of its own beside it.
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RUNS = 30
WARMUP = 3
CHANGED_FRACTION = 0.10
# Every VF on physnet1 (trusted), the PFs on physnet1 too; the root ports stay unassignable.
SCALE_SPECS = [
    '{"vendor_id": "8086", "product_id": "1889", "physical_network": "physnet1", "trusted": "true"}',
    '{"vendor_id": "8086", "product_id": "1592", "physical_network": "physnet1"}',
]


def result_name(name: str) -> str:
    """Where a run's JSON goes: a smoke run at a smaller scale must not overwrite the real figures."""
    return name if scale() == 1 else f"{name}-scale-{scale():g}"


def scaled(n: int, minimum: int) -> int:
    return max(minimum, round(n * scale()))


def build_report(host: SimHost, root: Path, specs: Sequence[str]) -> HostReport:
    """What an agent sends for ``host``: render it as /sys, scan it, classify with ``specs``."""
    scan = scan_sysfs(render_sysfs(host, root))
    classified, _warnings = classify(parse_device_specs(list(specs)), scan.devices)
    cells = tuple(
        NumaCell(node, parse_cpulist(cpus), kib // 1024, socket=host.socket_of(node))
        for node, (cpus, kib) in sorted(host.numa_cells.items())
    )
    return HostReport(cells, classified)


def measure(fn: Callable[[], object], runs: int, warmup: int, setup: Callable[[], object] | None = None) -> list[float]:
    """Like ``bench.report.timings``, with an unmeasured ``setup`` before every call."""
    out = []
    for i in range(warmup + runs):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


# -- PostgreSQL ------------------------------------------------------------------------------------


def pg_admin_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


def pg_reachable() -> str | None:
    """None when the PostgreSQL server answers, else why not (the benchmark then skips it)."""
    engine = sqlalchemy.create_engine(pg_admin_url(), connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            return None
    except sqlalchemy.exc.OperationalError as e:
        first_line = str(e.orig).strip().splitlines()[0]
        return f"PostgreSQL at {pg_admin_url()} is unreachable (set {PG_URL_ENV}): {first_line}"
    finally:
        engine.dispose()


@contextlib.contextmanager
def pg_database(prefix: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (its URL), dropped afterwards whatever is still connected."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield sqlalchemy.make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def databases(tmp: Path, prefix: str) -> Iterator[tuple[str, Database]]:
    """A migrated SQLite file in ``tmp``, then a fresh PostgreSQL database (skipped, with a note, when
    the server is unreachable); each disposed (and dropped) when the next is asked for. Use it under
    ``contextlib.closing`` so that an error in the caller's loop drops the database too."""
    db = Database.connect(f"sqlite:///{tmp / 'sqlite' / 'epa.db'}")
    try:
        db.migrate()
        yield "sqlite", db
    finally:
        db.dispose()
    why = pg_reachable()
    if why is not None:
        print(f"skipping postgresql: {why}", file=sys.stderr)
        return
    with pg_database(prefix) as url:
        db = Database.connect(url)
        try:
            db.migrate()
            yield "postgresql", db
        finally:
            db.dispose()


# -- the API server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclasses.dataclass(frozen=True)
class Server:
    url: str
    admin_token: str
    pid: int = 0


@contextlib.contextmanager
def api_server(db: Database, data_dir: Path) -> Iterator[Server]:
    """``epa serve`` on ``db`` as an operator runs it (its own process, uvicorn, one worker)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "serve.log"
    args = [
        *(sys.executable, "-m", "epa", "serve", "--data-dir", str(data_dir), "--port", str(port)),
        *("--database-url", db.engine.url.render_as_string(hide_password=False)),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        with ApiClient(url, None, timeout=2) as probe:
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"epa serve exited with {proc.returncode}:\n{log.read_text()}")
                try:
                    probe.health()
                    break
                except EpaError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"epa serve did not answer within 60 s:\n{log.read_text()}") from None
                    time.sleep(0.1)
        yield Server(url, (data_dir / "admin-token").read_text().strip(), proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- the benchmark -----------------------------------------------------------------------------


def scale_host() -> SimHost:
    """8 E810 ports x 123 VFs with their root ports: exactly 1,000 functions, on two NUMA nodes."""
    host = sriov_scale_host(pfs=8, vfs_per_pf=123, name="scale-1000")
    host.numa_cells = {0: ("0-31,64-95", 263_921_664), 1: ("32-63,96-127", 264_241_152)}
    assert len(host.functions) == 1000, len(host.functions)
    return host


def rebound(device: PciDevice) -> PciDevice:
    return dataclasses.replace(device, driver="vfio-pci", netdevs=())


def churned(report: HostReport, fraction: float) -> tuple[HostReport, int]:
    """``report`` with ``fraction`` of its devices changed the way an operator changes them: VFs
    rebound from iavf to vfio-pci (for DPDK), which also takes their network interfaces away."""
    want = round(len(report.devices) * fraction)
    candidates = [i for i, c in enumerate(report.devices) if c.device.driver == "iavf"]
    if len(candidates) < want:
        raise SystemExit(f"only {len(candidates)} iavf VFs to change, {want} wanted")
    step = len(candidates) / want
    picked = {candidates[int(k * step)] for k in range(want)}
    devices = tuple(
        dataclasses.replace(c, device=rebound(c.device)) if i in picked else c for i, c in enumerate(report.devices)
    )
    return HostReport(report.numa_cells, devices), len(picked)


class Host:
    """One host's generation as the agent tracks it across reports."""

    def __init__(self, db: Database, name: str) -> None:
        self.name = name
        _record, self.token = create_host(db, name)
        self.generation = 0


def expect(outcome: ReportOutcome | InventoryResult, added: int = 0, updated: int = 0, unchanged: int = 0) -> None:
    """Stop unless the report did what it should (the benchmark would be timing something else)."""
    got = (len(outcome.added), len(outcome.updated), outcome.unchanged)
    if got != (added, updated, unchanged):
        raise SystemExit(f"report outcome (added, updated, unchanged) = {got}, expected {(added, updated, unchanged)}")


def row(backend: str, case: str, devices: int, samples: list[float]) -> dict[str, object]:
    s = summary(samples)
    return {"backend": backend, "case": case, "devices": devices, **s, "us_per_device": s["p50_ms"] * 1e3 / devices}


def bench_backend(backend: str, db: Database, report: HostReport, data_dir: Path) -> list[dict[str, object]]:
    runs = scaled(RUNS, 3)
    n = len(report.devices)
    rows = []

    # (a) The first report of a fresh host: every device an INSERT.
    fresh: list[Host] = []

    def new_host() -> None:
        fresh.append(Host(db, f"first-{len(fresh)}"))

    def first() -> None:
        outcome = apply_report(db, fresh[-1].name, 0, report)
        expect(outcome, added=n)

    rows.append(row(backend, "first report (all inserts)", n, measure(first, runs, WARMUP, setup=new_host)))

    # (b) The same report again: one SELECT and the diff in memory; only the host row and its NUMA
    # cells are written.
    steady = Host(db, "steady")

    def unchanged() -> None:
        outcome = apply_report(db, steady.name, steady.generation, report)
        steady.generation = outcome.generation
        expect(outcome, unchanged=n)

    steady.generation = apply_report(db, steady.name, 0, report).generation
    rows.append(row(backend, "unchanged re-report", n, measure(unchanged, runs, WARMUP)))

    # (c) 10% of the devices changed: alternating between two reports, each run changes the same 100.
    changed_report, k = churned(report, CHANGED_FRACTION)
    churn = Host(db, "churn")
    flip = [report, changed_report]

    def changed() -> None:
        flip.reverse()
        outcome = apply_report(db, churn.name, churn.generation, flip[0])
        churn.generation = outcome.generation
        expect(outcome, updated=k, unchanged=n - k)

    outcome = apply_report(db, churn.name, 0, report)
    churn.generation = outcome.generation
    rows.append(row(backend, f"re-report, {k} changed", n, measure(changed, runs, WARMUP)))

    # (d) The unchanged re-report end to end: the agent's ApiClient -> epa serve -> the database.
    agent = Host(db, "over-http")
    with api_server(db, data_dir) as server, ApiClient(server.url, agent.token, timeout=60) as client:

        def unchanged_http() -> None:
            result = client.put_inventory(agent.name, agent.generation, report.numa_cells, report.devices)
            agent.generation = result.generation
            expect(result, unchanged=n)

        result = client.put_inventory(agent.name, 0, report.numa_cells, report.devices)
        agent.generation = result.generation
        rows.append(row(backend, "unchanged re-report, HTTP", n, measure(unchanged_http, runs, WARMUP)))
    return rows


def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="epa-bench-") as tmp_name:
        tmp = Path(tmp_name)
        report = build_report(scale_host(), tmp / "sys", SCALE_SPECS)
        assignable = sum(c.assignable for c in report.devices)
        print(f"report: {len(report.devices)} functions, {assignable} assignable", file=sys.stderr)
        rows: list[dict[str, Any]] = []
        with contextlib.closing(databases(tmp, "epa_bench_ingest")) as dbs:
            for backend, db in dbs:
                rows += bench_backend(backend, db, report, tmp / f"serve-{backend}")
    emit(
        result_name("inventory_ingest"),
        f"Inventory: ingesting a report of 1,000 PCI functions (whole benchmark {time.perf_counter() - t0:.0f} s)",
        rows,
    )


if __name__ == "__main__":
    main()
