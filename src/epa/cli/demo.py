"""``epa demo``: EPA's whole path on one machine for a newcomer - a server on SQLite, simulated hosts
(fake /sys trees and libvirt test:/// nodes) plus this host read from /sys, one agent each, aliases,
flavors and a few servers that become active - then it keeps running until Ctrl-C or SIGTERM.

The servers name the demo's boot image (this machine's Debian kernel and a busybox initramfs, uploaded
through the API as any image is, and fetched by each agent into its cache); the simulated hosts run
libvirt's test driver, where no guest runs, so their consoles stay empty and the dashboard says why.

Every child is stopped however the demo ends (terminate, wait, kill), and on Linux also gets SIGTERM
from the kernel should the demo itself die without cleaning up."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from epa.cli.client_settings import ENV_TOKEN, ENV_URL
from epa.cli.serve import DEFAULT_PORT
from epa.client import ApiClient
from epa.errors import Conflict, EpaError, NotFound, ServiceUnavailable
from epa.simulate.boot_image import MARKER_KEY, make_boot_image
from epa.simulate.hosts import gpu_host, nfv_host, no_numa_host
from epa.simulate.libvirt_node import write_node_xml
from epa.simulate.model import SimHost
from epa.simulate.sysfs_tree import render_sysfs

T = TypeVar("T")
EPA = [sys.executable, "-m", "epa"]
AGENT_INTERVAL_S = "2"
STOP_TIMEOUT_S = 10.0
SETUP_TIMEOUT_S = 90.0
PR_SET_PDEATHSIG = 1

# device_spec entries per simulated host: what each agent reports as assignable, and with which tags.
SPECS: dict[str, list[str]] = {
    "nfv-1": [
        '{"vendor_id": "8086", "product_id": "37c9"}',  # QAT C62x VFs
        '{"address": "0000:18:00.0", "physical_network": "physnet1"}',  # X710 port 0 and its VFs
        '{"address": "0000:18:00.1", "physical_network": "physnet2", "trusted": "yes"}',  # port 1
        '{"vendor_id": "10de", "product_id": "1eb8"}',  # Tesla T4
    ],
    "gpu-1": ['{"vendor_id": "10de", "product_id": "20b0"}'],  # A100s
    "edge-1": ['{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet1"}'],
}
SIMULATED: dict[str, Callable[[str], SimHost]] = {"nfv-1": nfv_host, "gpu-1": gpu_host, "edge-1": no_numa_host}

ALIASES: list[Any] = [
    {"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF", "numa_policy": "required"},
    {
        "name": "nic",
        "vendor_id": "8086",
        "product_id": "154c",
        "device_type": "type-VF",
        "physical_network": "physnet1",
    },
    [  # alternatives: either GPU model will do
        {"name": "gpu", "vendor_id": "10de", "product_id": "1eb8"},
        {"name": "gpu", "vendor_id": "10de", "product_id": "20b0"},
    ],
]
FLAVORS: list[dict[str, Any]] = [
    {"name": "vnf.small", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": "qat:2"},
    {"name": "vnf.nic", "vcpus": 2, "memory_mb": 2048, "pci_passthrough:alias": "qat:1, nic:1"},
    {"name": "gpu.large", "vcpus": 8, "memory_mb": 16384, "pci_passthrough:alias": "gpu:1"},
]
DEMO_IMAGE = "demo-boot"
SERVERS: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("vnf-1", "vnf.small", [{"physnet": "physnet2", "vnic_type": "direct", "vlan": 100}]),
    ("vnf-2", "vnf.nic", []),
    ("ml-1", "gpu.large", []),
]


class DemoFailed(EpaError):
    """The demo could not set itself up (a child died, something did not come up in time)."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the demo was setting up."""


def progress(message: str) -> None:
    click.echo(f"epa demo: {message}")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when the demo dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Children:
    """The demo's child processes, stopped in reverse order of start (agents before the server)."""

    logs: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = dict(self.env, **(extra_env or {}))
        with (self.logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter running epa
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=False,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise DemoFailed(f"{name} exited with status {proc.returncode}; see {self.logs / (name + '.log')}")

    def stop_all(self) -> None:
        running = [p for p in reversed(self.procs.values()) if p.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM set an event that the demo's waits look at; handlers restored after."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _wait(what: str, probe: Callable[[], T | None], stop: threading.Event, children: Children) -> T:
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if stop.is_set():
            raise Interrupted
        children.check_alive()
        # Only an API that is not up yet is worth waiting for; any other error (a refused token, a
        # server that failed) would be the same at the deadline: say it now.
        with contextlib.suppress(ServiceUnavailable):
            found = probe()
            if found is not None:
                return found
        stop.wait(0.3)
    raise DemoFailed(f"timed out after {SETUP_TIMEOUT_S:.0f}s waiting for {what}; logs in {children.logs}")


def _read_token(path: Path) -> str | None:
    return (path.read_text().strip() or None) if path.exists() else None


def _local_host_name() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._") or "localhost"
    return f"local-{name}"[:63]


def _host_token(api: ApiClient, name: str) -> str:
    """A fresh agent token for ``name``, creating the host if needed (a reused data dir has it)."""
    try:
        token: str = api.create_host(name)["agent_token"]
    except Conflict:
        return api.rotate_token(name)
    return token


def _render_hosts(data: Path) -> dict[str, Path]:
    hosts_dir = data / "hosts"
    roots: dict[str, Path] = {}
    for name, build in SIMULATED.items():
        host = build(name)
        root = hosts_dir / f"{name}-sys"
        if not root.exists():
            render_sysfs(host, root)
        write_node_xml(host, hosts_dir / f"{name}-node.xml")
        roots[name] = root
        progress(f"simulated host {name}: {len(host.functions)} PCI functions in {root}")
    return roots


def _define_catalogue(api: ApiClient) -> None:
    for alias in ALIASES:
        with contextlib.suppress(Conflict):
            api.create_alias(alias)
    for flavor in FLAVORS:
        with contextlib.suppress(Conflict):
            api.create_flavor(flavor)
    names = sorted({a["name"] if isinstance(a, dict) else a[0]["name"] for a in ALIASES})
    progress(f"aliases {', '.join(names)}; flavors {', '.join(f['name'] for f in FLAVORS)}")


def _demo_image(api: ApiClient, data: Path) -> str | None:
    """The demo's kernel image, uploaded through the API (kept from an earlier run in the same data
    dir); None, said once, when this machine has no kernel and busybox to make one from."""
    with contextlib.suppress(NotFound):
        if api.get_image(DEMO_IMAGE).get("status") == "active":
            return DEMO_IMAGE
        api.delete_image(DEMO_IMAGE)  # an upload cut off by an earlier run
    made = make_boot_image(data / "image")
    if made is None:
        progress("no readable kernel under /boot or no /bin/busybox: the demo's servers boot no image")
        return None
    api.create_image(DEMO_IMAGE, kind="kernel", cmdline=made.cmdline)
    api.upload_image_part(DEMO_IMAGE, "kernel", made.kernel)
    api.upload_image_part(DEMO_IMAGE, "initrd", made.initrd)
    progress(f"image {DEMO_IMAGE}: kernel {made.kernel} and a busybox initramfs, uploaded through the API")
    return DEMO_IMAGE


def _boot_servers(api: ApiClient, stop: threading.Event, children: Children, image: str | None) -> list[dict[str, Any]]:
    existing = {s["name"] for s in api.list_servers() if s["status"] not in ("error", "deleted")}
    ids = []
    boot = {"image": image, "user_data": f"#cloud-config\n# {MARKER_KEY}=demo\n"} if image is not None else None
    for name, flavor, ports in SERVERS:
        if name in existing:
            continue
        created = api.create_server(name, flavor, ports, boot=boot)
        if created["status"] == "error":
            raise DemoFailed(f"server {name} was not scheduled: {created['status_reason']}")
        progress(f"server {name} ({flavor}) scheduled on {created['host']}")
        ids.append(created["id"])

    def active(server_id: str) -> dict[str, Any] | None:
        server = api.get_server(server_id)
        if server["status"] == "error":
            raise DemoFailed(f"server {server['name']} failed: {server['status_reason']}")
        return server if server["status"] == "active" else None

    servers = []
    for server_id in ids:
        server = _wait(f"server {server_id} to become active", functools.partial(active, server_id), stop, children)
        addresses = ", ".join(d["address"] for d in server["devices"]) or "no devices"
        progress(f"server {server['name']} active on {server['host']} with {addresses}")
        servers.append(server)
    return servers


def _print_welcome(url: str, token_file: Path, data: Path) -> None:
    click.echo(
        f"""
EPA demo is running.
  dashboard:   {url}/
  API docs:    {url}/docs      metrics: {url}/metrics
  admin token: {token_file}
  data dir:    {data} (database, simulated hosts, logs/)

Try (in another shell):
  export {ENV_URL}={url} {ENV_TOKEN}=$(cat {token_file})
  epa host list
  epa device list --host nfv-1 --status claimed
  epa server list
  epa server create vnf-9 --flavor vnf.small --port physnet=physnet2,vnic_type=direct --dry-run
  epa server create ml-2 --flavor gpu.large
  curl -s -H "Authorization: Bearer ${ENV_TOKEN}" {url}/metrics | grep '^epa_'
"""
    )


def run_demo(port: int, data: Path, exit_after_setup: bool, stop: threading.Event) -> None:
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in (ENV_URL, ENV_TOKEN)}
    children = Children(logs, env)
    url = f"http://127.0.0.1:{port}"
    try:
        roots = _render_hosts(data)
        progress(f"starting epa serve on {url} (SQLite in {data / 'epa.db'}; log {logs / 'serve.log'})")
        children.start("serve", [*EPA, "serve", "--data-dir", str(data), "--port", str(port)])
        with ApiClient(url, None, timeout=2.0) as anonymous:
            _wait(
                "epa serve to answer /healthz", lambda: anonymous.health().get("status") == "ok" or None, stop, children
            )
        token_file = data / "admin-token"
        admin_token = _wait("the admin token", lambda: _read_token(token_file), stop, children)
        with ApiClient(url, admin_token) as api:
            local = _local_host_name()
            for name in [*SIMULATED, local]:
                token = _host_token(api, name)
                args = [*EPA, "agent", "--server", url, "--host-name", name, "--interval", AGENT_INTERVAL_S]
                if name == local:
                    args += ["--hypervisor", "none"]
                else:
                    args += ["--sysfs-root", str(roots[name])]
                    args += ["--hypervisor", f"test://{data / 'hosts' / f'{name}-node.xml'}"]
                    args += [a for spec in SPECS[name] for a in ("--device-spec", spec)]
                children.start(f"agent-{name}", args, {ENV_TOKEN: token})
                progress(f"agent for {name} started (log {logs / f'agent-{name}.log'})")

            def all_reported() -> bool | None:
                hosts = {h["name"]: h for h in api.list_hosts()}
                waiting = [n for n in [*SIMULATED, local] if hosts.get(n, {}).get("last_report_at") is None]
                return None if waiting else True

            _wait("every agent's first report", all_reported, stop, children)
            for h in api.list_hosts():
                progress(f"host {h['name']}: {h['device_total']} devices reported")
            _define_catalogue(api)
            _boot_servers(api, stop, children, _demo_image(api, data))
        _print_welcome(url, token_file, data)
        if exit_after_setup:
            return
        click.echo("Press Ctrl-C to stop.")
        while not stop.wait(1.0):
            children.check_alive()
    finally:
        progress("stopping agents and server")
        children.stop_all()
        progress("stopped")


@click.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the database, simulated hosts and logs go (default: a fresh temporary directory).",
)
@click.option("--exit-after-setup", is_flag=True, help="Stop everything and exit once the demo is set up.")
def demo(port: int, data_dir: Path | None, exit_after_setup: bool) -> None:
    """Run a whole EPA cloud on this machine: a server, simulated hosts with their agents, servers."""
    data = (data_dir or Path(tempfile.mkdtemp(prefix="epa-demo-"))).resolve()
    data.mkdir(parents=True, exist_ok=True)
    progress(f"data dir {data}")
    with _stop_on_signals() as stop:
        try:
            run_demo(port, data, exit_after_setup, stop)
        except Interrupted:
            progress("interrupted during set-up")
