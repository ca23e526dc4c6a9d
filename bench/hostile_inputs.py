"""What the API takes and what it refuses, measured on a real ``epa serve`` (SQLite): the largest realistic
inventory report (16 E810 ports x 255 VFs with their root ports: 4,112 PCI functions) - its size against the
route's cap, the time to ingest it, the server's peak memory for one and for two at once - and ``/healthz``
latency while such reports are ingested back to back, against its latency on the idle server (the floor,
measured in the same run). Then the hostile cases: 150 MB without a token, and a token's body past the cap.

Memory is the server process's VmHWM (its peak RSS, reset before each case through /proc/PID/clear_refs)
less its RSS before the case."""

from __future__ import annotations

import json
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from bench.inventory_ingest import SCALE_SPECS, api_server, build_report, result_name, scaled
from bench.report import emit, scale
from epa.api.limits import INVENTORY_BODY_LIMIT
from epa.client.api_client import inventory_json
from epa.inventory import Database
from epa.simulate.hosts import sriov_scale_host
from epa.simulate.model import SimHost

PFS = 16
VFS_PER_PF = 255
HOSTILE_BYTES = 150 * 1024 * 1024
MIB = 1024 * 1024
T = TypeVar("T")


def largest_host(pfs: int) -> SimHost:
    """``pfs`` E810 ports with 255 VFs each (half on iavf with a netdev, half on vfio-pci) and their root
    ports: 16 of them are 4,112 functions, the largest host a cloud realistically has."""
    # A PF's 255 VFs take its bus and the next: 8 buses apart, 16 PFs fit under bus 0x100.
    host = sriov_scale_host(pfs, VFS_PER_PF, "big-1", first_bus=0x10, bus_stride=0x08)
    host.numa_cells = {0: ("0-31,64-95", 263_921_664), 1: ("32-63,96-127", 264_241_152)}
    return host


def memory_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(rest.split()[0])
    return out


def peak_growth_mb(pid: int, action: Callable[[], T]) -> tuple[float, T]:
    before = memory_kb(pid)["VmRSS"]
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    result = action()
    return (memory_kb(pid)["VmHWM"] - before) / 1024, result


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class HealthProbe:
    """Asks /healthz in a loop on one kept-alive connection, recording each answer's latency."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                assert client.get(f"{self.url}/healthz").status_code == 200
                self.samples.append(time.perf_counter() - t0)
                time.sleep(0.005)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def hostile_put(port: int, token: str | None, chunked: bool) -> int:
    """PUT 150 MB at the inventory route; the status the server answered."""
    lines = ["PUT /v1/hosts/big-1/inventory HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {HOSTILE_BYTES}")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    payload = b" " * MIB
    frame = f"{MIB:x}\r\n".encode() + payload + b"\r\n" if chunked else payload
    head: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:

        def read() -> None:
            data = b""
            try:
                while b"\r\n" not in data and (chunk := sock.recv(4096)):
                    data += chunk
            except OSError:
                pass
            head.append(data)

        reader = threading.Thread(target=read)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reader.start()
        try:
            for _ in range(HOSTILE_BYTES // MIB):
                sock.sendall(frame)
        except OSError:
            pass
        reader.join(timeout=60)
    return int(head[0].split()[1]) if head and head[0] else 0


def main() -> None:
    pfs = scaled(PFS, 2)
    with tempfile.TemporaryDirectory(prefix="epa-bench-hostile-") as tmp:
        host = largest_host(pfs)
        report = build_report(host, Path(tmp) / "sys", SCALE_SPECS)
        functions = len(report.devices)
        template = inventory_json(report.numa_cells, report.devices)
        db = Database.connect(f"sqlite:///{tmp}/epa.db")
        db.migrate()
        with api_server(db, Path(tmp) / "data") as server:
            port = int(server.url.rsplit(":", 1)[1])
            admin = {"Authorization": f"Bearer {server.admin_token}"}
            with httpx.Client(timeout=300) as client:
                token = client.post(f"{server.url}/v1/hosts", json={"name": "big-1"}, headers=admin).json()
                agent = {"Authorization": f"Bearer {token['agent_token']}", "Content-Type": "application/json"}
                generation = 0

                def put() -> float:
                    nonlocal generation
                    raw = json.dumps({"generation": generation, **template}).encode()
                    t0 = time.perf_counter()
                    resp = client.put(f"{server.url}/v1/hosts/big-1/inventory", content=raw, headers=agent)
                    elapsed = time.perf_counter() - t0
                    assert resp.status_code == 200, resp.text[:300]
                    generation = resp.json()["generation"]
                    return elapsed

                size = len(json.dumps({"generation": 0, **template}).encode())
                with HealthProbe(server.url) as idle:
                    time.sleep(scaled(4, 1))
                first_mb, first_s = peak_growth_mb(server.pid, put)
                runs = scaled(12, 3)
                times: list[float] = []
                peaks: list[float] = []
                with HealthProbe(server.url) as busy:
                    for _ in range(runs):
                        grew, took = peak_growth_mb(server.pid, put)
                        peaks.append(grew)
                        times.append(took)

                def two_at_once() -> None:
                    bodies = [json.dumps({"generation": 0, **template}).encode() for _ in range(2)]
                    threads = [
                        threading.Thread(
                            target=lambda b=b: httpx.put(
                                f"{server.url}/v1/hosts/big-1/inventory", content=b, headers=agent, timeout=300
                            )
                        )
                        for b in bodies
                    ]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()

                two_mb, _ = peak_growth_mb(server.pid, two_at_once)
            hostile_put(port, None, chunked=False)  # warm-up
            rows_hostile = []
            for what, who, chunked in (
                ("150 MB, no token, Content-Length", None, False),
                ("150 MB, no token, chunked", None, True),
                ("150 MB, agent token, Content-Length", token["agent_token"], False),
                ("150 MB, agent token, chunked", token["agent_token"], True),
            ):
                t0 = time.perf_counter()
                grew, status = peak_growth_mb(server.pid, lambda w=who, c=chunked: hostile_put(port, w, c))
                rows_hostile.append(
                    {"case": what, "status": status, "answer_ms": (time.perf_counter() - t0) * 1e3, "peak_mb": grew}
                )
    rows = [
        {
            "what": f"largest report: {functions} functions, {size / MIB:.2f} MiB "
            f"(cap {INVENTORY_BODY_LIMIT / MIB:.0f} MiB), unchanged re-report",
            "p50_ms": statistics.median(times) * 1e3,
            "max_ms": max(times) * 1e3,
            "peak_mb": max(peaks),
        },
        {
            "what": "its first report (all inserts)",
            "p50_ms": first_s * 1e3,
            "max_ms": first_s * 1e3,
            "peak_mb": first_mb,
        },
        {"what": "two such reports at once", "p50_ms": 0.0, "max_ms": 0.0, "peak_mb": two_mb},
        {
            "what": f"/healthz idle ({len(idle.samples)} asks): p50 / p99",
            "p50_ms": statistics.median(idle.samples) * 1e3,
            "max_ms": percentile(idle.samples, 0.99) * 1e3,
            "peak_mb": 0.0,
        },
        {
            "what": f"/healthz during {runs} reports ({len(busy.samples)} asks): p50 / p99",
            "p50_ms": statistics.median(busy.samples) * 1e3,
            "max_ms": percentile(busy.samples, 0.99) * 1e3,
            "peak_mb": 0.0,
        },
    ]
    emit(result_name("hostile_inputs"), f"Largest accepted inventory on SQLite (scale {scale():g})", rows)
    emit(result_name("hostile_inputs_refused"), "Hostile bodies refused", rows_hostile)
