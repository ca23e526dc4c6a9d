"""Libvirt's embedded QEMU driver (``qemu:///embed``) for tests that need real QEMU behind it: a root of
its own and a fresh Python process to open it in (libvirt allows one embedded root per process)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# QEMU runs as ourselves (root in CI) with no sVirt labelling, its stdout/stderr in a file (no virtlogd).
QEMU_CONF = 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\nstdio_handler = "file"\n'


def qemu_binary() -> str:
    qemu = shutil.which("qemu-system-x86_64")
    assert qemu is not None, "qemu-system-x86_64 is not installed (./dev installs qemu-system-x86)"
    return qemu


def embed_root(factory: pytest.TempPathFactory, prefix: str) -> Path:
    """A driver root with its ``etc/qemu.conf``; shallow, as QEMU's monitor socket path must stay short."""
    root = factory.mktemp(prefix)
    (root / "etc").mkdir()
    (root / "etc" / "qemu.conf").write_text(QEMU_CONF)
    return root


def run_program(program: str, *args: str, timeout_s: float) -> Any:
    """Run ``program`` in a fresh Python with ``args``; the JSON it printed last."""
    done = subprocess.run(
        [sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
