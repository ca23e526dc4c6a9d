"""A server that boots for real through EPA's whole path: `epa serve`, `epa agent` on libvirt's QEMU
driver (``qemu:///embed``, domain type ``qemu``: TCG, as this machine has no usable KVM), an image made
from this host's own kernel and a busybox initramfs uploaded with `epa image create`, a server created
with `epa server create --image --user-data`; the guest's serial console, read through the API and
`epa server console`, shows the host name and the user-data marker it found on its NoCloud seed and
its PCI functions. Deleting the server leaves nothing on the host.

The prerequisites (Debian's linux-image-amd64 kernel, busybox-static, QEMU) are installed by ./dev;
a missing one fails the test, it never skips."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from epa.client import ApiClient
from epa.simulate.boot_image import MARKER_KEY, make_boot_image
from support.procs import Processes, start_serve, wait_for

pytestmark = pytest.mark.slow
EPA = [sys.executable, "-m", "epa"]
QEMU_CONF = 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\nstdio_handler = "file"\n'
BOOT_DEADLINE_S = 300.0


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EPA, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _kill_left_qemu(root: Path) -> None:
    # The embedded driver's QEMU processes outlive a killed agent: end the test's own, by their pid files.
    for pidfile in root.glob("run/qemu/*.pid"):
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            continue


@pytest.fixture
def embed_root() -> Iterator[Path]:
    # Short: QEMU's monitor socket lives under it and a unix socket path has at most 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="epa-eb-", dir="/tmp"))
    (root / "etc").mkdir()
    (root / "etc" / "qemu.conf").write_text(QEMU_CONF)
    try:
        yield root
    finally:
        _kill_left_qemu(root)
        subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.mark.timeout(900)
def test_a_server_boots_its_image_and_its_console_shows_the_seed(tmp_path: Path, embed_root: Path) -> None:
    image = make_boot_image(tmp_path / "image")
    if image is None:
        pytest.fail(
            "no kernel with modules under /boot, or no /bin/busybox (./dev installs linux-image-amd64, busybox-static)"
        )
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    # The agent reads this machine's own /sys: the guest's vCPU is pinned to CPUs that exist.
    procs = Processes()
    started = time.monotonic()
    try:
        url = start_serve(procs, tmp_path / "serve.log", env, ["--db", str(tmp_path / "epa.db")], tmp_path)
        admin = (tmp_path / "admin-token").read_text().strip()
        env.update(EPA_URL=url, EPA_TOKEN=admin)
        with ApiClient(url, admin) as api:
            token = api.create_host("boot-1")["agent_token"]
            agent = [
                *EPA, "agent", "--server", url, "--token", token, "--host-name", "boot-1",
                "--hypervisor", f"qemu:///embed?root={embed_root}", "--domain-type", "qemu",
                "--vf-config", "off", "--state-dir", str(tmp_path / "state"), "--interval", "1",
            ]  # fmt: skip
            procs.start(agent, tmp_path / "agent.log", env)
            done = _cli(
                env, "image", "create", "tiny", "--kernel", str(image.kernel), "--initrd", str(image.initrd),
                "--cmdline", image.cmdline,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert _cli(env, "flavor", "create", "tiny", "--vcpus", "1", "--ram", "256").returncode == 0
            user_data = tmp_path / "user-data"
            user_data.write_text(f"#cloud-config\n# {MARKER_KEY}=booted-by-epa\n")
            wait_for("the agent's first report", lambda: api.get_host("boot-1")["generation"] or None)
            done = _cli(env, "server", "create", "vm-boot", "--flavor", "tiny", "--image", "tiny",
                        "--user-data", str(user_data), "--json")  # fmt: skip
            assert done.returncode == 0, done.stderr + (tmp_path / "agent.log").read_text()[-3000:]
            (server,) = api.list_servers()

            def console_done() -> list[str] | None:
                current = api.get_server(server["id"])
                if current["status"] == "error":
                    pytest.fail(f"server failed: {current['status_reason']}\n{(tmp_path / 'agent.log').read_text()}")
                lines = api.get_console(server["id"], 200)["lines"]
                return lines if "EPA boot done" in lines else None

            try:
                lines = wait_for("the guest to print its boot lines", console_done, deadline_s=BOOT_DEADLINE_S)
            except pytest.fail.Exception:
                print((tmp_path / "agent.log").read_text()[-5000:])
                print(api.get_console(server["id"], 200)["lines"])
                raise
            booted = time.monotonic() - started
            print(f"create to 'EPA boot done' on the console: {booted:.1f} s")
            assert "EPA hostname vm-boot" in lines
            assert f"EPA instance {server['id']}" in lines
            assert f"EPA user-data {MARKER_KEY}=booted-by-epa" in lines
            pci = [line for line in lines if line.startswith("EPA pci ")]
            # The seed is a virtio block device (1af4:1001) on the guest's PCI bus, beside the host bridge.
            assert any(re.fullmatch(r"EPA pci 0000:00:[0-9a-f]{2}\.0 0x1af4:0x1001 class 0x010000", p) for p in pci), (
                pci
            )
            assert api.get_server(server["id"])["status"] == "active"
            done = _cli(env, "server", "console", server["id"], "--tail", "50")
            assert done.returncode == 0 and "EPA hostname vm-boot" in done.stdout
            # The image is in use: it cannot be deleted.
            assert _cli(env, "image", "delete", "tiny").returncode == 1
            api.delete_server(server["id"])
            wait_for("the server to be deleted", lambda: api.get_server(server["id"])["status"] == "deleted" or None,
                     deadline_s=60)  # fmt: skip
            assert not list((tmp_path / "state").glob(f"{server['id']}.*"))
            assert _cli(env, "image", "delete", "tiny").returncode == 0
    finally:
        procs.stop_all()
