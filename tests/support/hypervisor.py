"""A hypervisor that outlives the agent: a private ``libvirtd`` serving libvirt's test driver.

``test:///NODE.xml`` opened by the agent itself lives and dies with the agent's process, so a killed
agent would take its domains with it: no real host behaves like that. Here a ``libvirtd`` of the test's
own (its sockets in a temporary directory) holds ``test:///default``, whose state the daemon keeps while
a connection to it is open - this helper holds one for the daemon's whole life. Agents reach it through
``test+unix:///default?socket=...`` exactly as a real agent reaches ``qemu:///system``, and a killed agent
finds on restart the domains it left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from epa.libvirt_client import open_connection
from support.procs import wait_for

LIBVIRTD = "/usr/sbin/libvirtd"
# Sockets readable by the daemon's user only, no authentication (root, the test, reaches them anyway).
CONFIG = """\
unix_sock_dir = "{dir}"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:{dir}/libvirtd.log"
"""
# Run as root, libvirtd is the system daemon: its drivers take pid files under /run/libvirt, so a second
# one (another test's, or a system libvirtd) cannot start. As an unprivileged user it is a session
# daemon whose state lies under its own $HOME and $XDG_RUNTIME_DIR: here, a private directory.
NOBODY = 65534


@dataclass(frozen=True)
class Daemon:
    uri: str
    log: Path


@contextmanager
def libvirt_daemon() -> Iterator[Daemon]:
    """Run a private libvirtd (a session daemon, as ``nobody`` when this is root); fails (never skips)
    when it is not installed."""
    binary = shutil.which("libvirtd") or (LIBVIRTD if Path(LIBVIRTD).exists() else None)
    if binary is None:
        pytest.fail("libvirtd is not installed (Debian package libvirt-daemon; ./dev installs it)")
    # Not under pytest's tmp_path: that is private to root, and the daemon's user must get in.
    where = Path(tempfile.mkdtemp(prefix="epa-libvirtd-"))
    where.chmod(0o777)
    config = where / "libvirtd.conf"
    config.write_text(CONFIG.format(dir=where))
    config.chmod(0o644)
    socket = where / "libvirt-sock"
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(where),
        "XDG_RUNTIME_DIR": str(where / "run"),
        "XDG_CONFIG_HOME": str(where / "config"),
        "XDG_CACHE_HOME": str(where / "cache"),
    }
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    out = (where / "libvirtd.out").open("wb")
    proc = subprocess.Popen(
        [*as_user, binary, "--config", str(config)],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=where,
    )
    try:

        def up() -> bool | None:
            if proc.poll() is not None:
                pytest.fail(f"libvirtd exited with {proc.returncode}:\n{(where / 'libvirtd.out').read_text()}")
            return socket.exists() or None

        wait_for("libvirtd's socket", up)
        uri = f"test+unix:///default?socket={socket}"
        # The test driver frees its default state when the last connection closes; a real hypervisor
        # keeps its domains whoever is connected, so a connection stays open until the daemon stops.
        with open_connection(uri):
            yield Daemon(uri, where / "libvirtd.log")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        out.close()
        shutil.rmtree(where, ignore_errors=True)
