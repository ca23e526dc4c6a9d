"""`epa demo` as a newcomer runs it: it sets up a whole cloud (server, three simulated hosts and this
one, aliases, flavors, active servers), prints where the dashboard and the admin token are, and on
Ctrl-C stops every process it started and exits 0."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from epa.client import ApiClient
from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.procs import free_port, wait_for

pytestmark = pytest.mark.slow

EPA = [sys.executable, "-m", "epa"]
SIMULATED = {"nfv-1", "gpu-1", "edge-1"}


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    env.pop("EPA_URL", None)
    env.pop("EPA_TOKEN", None)
    return env


def _processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text`` (zombies have an empty one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _children_of(pid: int) -> list[int]:
    """PIDs of live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                found.append(int(entry.name))
    return found


def _alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has an empty command line)."""
    alive = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.append(pid)
        except OSError:
            continue
    return alive


def _read_lines(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def _dashboard_shows_the_demo(url: str, admin: str, screenshot: Path) -> Path:
    """The demo's hosts, devices and servers on the dashboard, in a real headless Chromium."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(15_000)
            page.goto(url + "/")
            page.fill("#token", admin)
            page.click("#login-form button[type=submit]")
            for host in SIMULATED:
                expect(page.locator(f'#hosts tbody tr[data-host="{host}"]')).to_contain_text(host)
            expect(page.locator('#trees [data-host="nfv-1"]')).to_contain_text("type-VF")
            for server in ("vnf-1", "vnf-2", "ml-1"):
                expect(page.locator("#servers")).to_contain_text(server)
            expect(page.locator("#servers")).to_contain_text("running")
            # A selected server's console: the simulated hosts run no guest, and the page says so.
            page.click('#servers tbody tr[data-server="ml-1"]')
            expect(page.locator("#console-title")).to_contain_text("ml-1")
            expect(page.locator("#console")).to_contain_text("host gpu-1 runs libvirt's test driver")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return screenshot


def test_demo_sets_up_a_cloud_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    port = free_port()
    args = [*EPA, "demo", "--port", str(port), "--data-dir", str(data)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(tmp_path))
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc, lines), daemon=True)
    reader.start()
    out: list[str] = []
    children: list[int] = []
    try:

        def printed(marker: str) -> str | None:
            while not lines.empty():
                out.append(lines.get())
            if proc.poll() is not None:
                pytest.fail(f"epa demo exited with {proc.returncode}:\n{''.join(out)}")
            return next((line for line in out if marker in line), None)

        dashboard = wait_for("the dashboard URL", lambda: printed("dashboard:"), deadline_s=100)
        url = f"http://127.0.0.1:{port}"
        assert dashboard.split("dashboard:", 1)[1].strip() == f"{url}/"
        token_line = wait_for("the admin token's path", lambda: printed("admin token:"), deadline_s=5)
        token_file = Path(token_line.split("admin token:", 1)[1].strip())
        assert token_file == data / "admin-token"
        assert f"export EPA_URL={url}" in "".join(out)

        with ApiClient(url, token_file.read_text().strip()) as api:
            hosts = {h["name"]: h for h in api.list_hosts()}
            assert len(hosts) == 4 and set(hosts) > SIMULATED, hosts
            assert all(h["last_report_at"] is not None and h["device_total"] > 0 for h in hosts.values()), hosts
            devices = api.list_devices(host="nfv-1")
            assert any(d["vendor_id"] == "8086" and d["product_id"] == "37c9" and d["assignable"] for d in devices)
            servers = {s["name"]: s for s in api.list_servers()}
            assert {name: s["status"] for name, s in servers.items()} == {
                "vnf-1": "active",
                "vnf-2": "active",
                "ml-1": "active",
            }
            assert servers["ml-1"]["host"] == "gpu-1"
            assert any(d["port"] == 0 for d in servers["vnf-1"]["devices"])  # the direct port's VF
            # The servers boot the demo's image (./dev installs the kernel and busybox it is made of);
            # each server's agent fetched it into its cache and told the API so.
            image = api.get_image("demo-boot")
            assert image["status"] == "active" and image["kind"] == "kernel"
            assert {s["image"]["name"] for s in servers.values()} == {"demo-boot"}
            shas = {p["sha256"] for p in image["parts"]}

            def cached_everywhere() -> bool | None:
                # Said at the end of the agent's pass that made the server active: a moment after it.
                for server in servers.values():
                    held = api.get_host(server["host"])["images"]
                    if held is None or not shas <= {p["sha256"] for p in held["parts"]}:
                        return None
                return True

            wait_for("every server's host to report the image cached", cached_everywhere, deadline_s=30)
            admin = token_file.read_text().strip()
        shot = _dashboard_shows_the_demo(url, admin, tmp_path / "demo-dashboard.png")
        assert shot.stat().st_size > 10_000
        children = _children_of(proc.pid)
        assert len(children) == 5, children  # its server and four agents

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        assert proc.stdout is not None
        proc.stdout.close()
    wait_for("every child to be gone", lambda: _alive(children) == [] or None, deadline_s=5)
    assert _processes_mentioning(str(data)) == []


def test_exit_after_setup_stops_everything_and_exits_0(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    args = [*EPA, "demo", "--port", str(free_port()), "--data-dir", str(data), "--exit-after-setup"]
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, env=_env(tmp_path), timeout=110, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dashboard: " in done.stdout and "server ml-1 active on gpu-1" in done.stdout
    assert "Press Ctrl-C" not in done.stdout
    assert _processes_mentioning(str(data)) == []
    assert time.monotonic() - started < 110
