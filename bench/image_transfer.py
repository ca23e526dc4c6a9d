"""Images: upload MB/s through ``epa serve`` into the database (4 MiB chunks), an agent's first fetch
MB/s into its cache (streamed, sha256 checked, renamed), and a server's create-to-active time with the
image already cached against one that fetches it first, through real processes (``epa serve`` and
``epa agent`` on a simulated host with libvirt's ``test:///`` driver). The floor, measured in the same
run: reading and hashing the same file from local disk (what the client and the agent do anyway)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.inventory_ingest import pg_database, pg_reachable
from bench.processes import EPA, api_servers, start, stop
from bench.report import emit, scale
from epa.agent.images import ImageCache, image_ref
from epa.client import ApiClient
from epa.simulate.hosts import no_numa_host
from epa.simulate.libvirt_node import write_node_xml
from epa.simulate.sysfs_tree import render_sysfs

MIB = 1024 * 1024
DEADLINE_S = 30.0


def _file(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        for _ in range(size // MIB):
            f.write(os.urandom(MIB))  # incompressible: no layer gets a shortcut
    return path


def _mbps(size: int, seconds: float) -> float:
    return size / MIB / seconds


def _hash_floor(path: Path) -> float:
    t0 = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return time.perf_counter() - t0


def _wait_active(api: ApiClient, server_id: str, log: Path) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < DEADLINE_S:
        status = api.get_server(server_id)["status"]
        if status == "active":
            return time.perf_counter() - t0
        if status == "error":
            raise SystemExit(f"server {server_id}: {api.get_server(server_id)['status_reason']}")
        time.sleep(0.02)
    lines = [line for line in log.read_text().splitlines() if "heartbeat" not in line]
    raise SystemExit(f"server {server_id} not active after {DEADLINE_S:.0f} s:\n" + "\n".join(lines[-30:]))


@contextlib.contextmanager
def _database(backend: str, where: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{where / 'epa.db'}"
    else:
        with pg_database("epa_bench_images") as url:
            yield url


def _run(backend: str, size: int, where: Path) -> list[dict[str, object]]:
    image = _file(where / "disk.raw", size)
    floor = _hash_floor(image)
    rows: list[dict[str, object]] = []
    with (
        _database(backend, where) as url,
        api_servers(url, where / "data", 1) as (urls, _, token),
        ApiClient(urls[0], token, timeout=60) as api,
    ):
        api.create_image("bench")
        t0 = time.perf_counter()
        api.upload_image_part("bench", "disk", image)
        upload = time.perf_counter() - t0
        host = no_numa_host("bench-1")
        render_sysfs(host, where / "sys")
        node = write_node_xml(host, where / "node.xml")
        agent_token = api.create_host("bench-1")["agent_token"]
        (where / "proc").mkdir()
        (where / "proc" / "meminfo").write_text("MemTotal:       16384000 kB\n")
        args = [
            *EPA, "agent", "--server", urls[0], "--token", agent_token, "--host-name", "bench-1",
            "--sysfs-root", str(where / "sys"), "--procfs-root", str(where / "proc"),
            "--hypervisor", node, "--interval", "0.1", "--state-dir", str(where / "state"),
        ]  # fmt: skip
        agent = start(args, where / "agent.log")
        try:
            while api.get_host("bench-1")["generation"] == 0:
                time.sleep(0.05)
            api.create_flavor({"name": "tiny", "vcpus": 1, "memory_mb": 64})
            cold = api.create_server("cold", "tiny", boot={"image": "bench"})
            cold_s = _wait_active(api, str(cold["id"]), where / "agent.log")
            warm_s = []
            for i in range(max(3, int(10 * scale()))):
                warm = api.create_server(f"warm-{i}", "tiny", boot={"image": "bench"})
                warm_s.append(_wait_active(api, str(warm["id"]), where / "agent.log"))
                # Its CPU back before the next one: the simulated host is small.
                api.delete_server(str(warm["id"]))
                while api.get_server(str(warm["id"]))["status"] != "deleted":
                    time.sleep(0.02)
            # The first fetch on its own: a fresh cache, the agent's token, the same route.
            with ApiClient(urls[0], agent_token, timeout=60) as agent_api:
                ref = image_ref(cold)
                assert ref is not None
                cache = ImageCache(where / "fresh-cache", 4 * size, agent_api)
                t0 = time.perf_counter()
                cache.ensure(ref.parts["disk"])
                fetch = time.perf_counter() - t0
        finally:
            stop([agent])
    warm_s.sort()
    rows.append({"database": backend, "what": "read + sha256 the file (floor)", "MiB": size // MIB,
                 "seconds": floor, "MiB/s": _mbps(size, floor)})  # fmt: skip
    rows.append({"database": backend, "what": "upload (client hash + HTTP + 4 MiB rows)", "MiB": size // MIB,
                 "seconds": upload, "MiB/s": _mbps(size, upload)})  # fmt: skip
    rows.append({"database": backend, "what": "agent's first fetch (HTTP + sha256 + fsync)", "MiB": size // MIB,
                 "seconds": fetch, "MiB/s": _mbps(size, fetch)})  # fmt: skip
    rows.append({"database": backend, "what": "create to active, image fetched first", "MiB": size // MIB,
                 "seconds": cold_s, "MiB/s": "-"})  # fmt: skip
    rows.append({"database": backend, "what": f"create to active, warm cache (p50 of {len(warm_s)})",
                 "MiB": size // MIB, "seconds": warm_s[len(warm_s) // 2], "MiB/s": "-"})  # fmt: skip
    return rows


def main() -> None:
    size = max(16, int(256 * scale())) * MIB
    backends = ["sqlite"]
    why = pg_reachable()
    if why is None:
        backends.append("postgresql")
    else:
        print(f"skipping postgresql: {why}", file=sys.stderr)
    rows: list[dict[str, object]] = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="epa-bench-img-") as where:
            rows += _run(backend, size, Path(where))
    emit("image_transfer", f"Image transfer ({size // MIB} MiB raw image; one epa serve, one agent)", rows)


if __name__ == "__main__":
    main()
