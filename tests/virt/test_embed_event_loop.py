"""``qemu:///embed`` through the plain ``open_connection`` the agent uses: the embedded QEMU driver waits on
its monitor through libvirt's event loop, and the agent never registered one: libvirt refused every
connection ("An event loop implementation must be registered"), logged once, and the agent's servers
stayed ``scheduled`` for ever. In a fresh Python process (libvirt allows
one embedded root per process, and the loop is per process), under a deadline: a TCG domain defined and
started for real, and the domain type the agent would choose from this driver's domain capabilities."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

QEMU_CONF = 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\nstdio_handler = "file"\n'
PROGRAM = """
import json, sys, uuid
from epa.agent.hypervisor import choose_domain_type
from epa.libvirt_client import embedded_qemu_uri, open_connection
from epa.virt import DomainMetadata, DomainSpec, build_domain_xml

root, emulator = sys.argv[1], sys.argv[2]
out = {}
with open_connection(embedded_qemu_uri(root)) as conn:
    refused = choose_domain_type(conn, lambda _emulator: "the probe said no")
    works = choose_domain_type(conn, lambda _emulator: None)
    out["refused"] = refused.to_json()
    out["works"] = works.to_json()
    spec = DomainSpec(
        name="epa-loop", uuid=uuid.uuid4(), domain_type=refused.domain_type, vcpus=1, memory_mb=32,
        host_nodes=(), cpus_by_node={}, memory_by_node={}, host_cpus={}, guest_numa=False,
        emulator=emulator, metadata=DomainMetadata(server_id="loop-test", flavor="tiny"),
    )
    conn.define_domain(build_domain_xml(spec))
    try:
        conn.start_domain("epa-loop")
        out["state"] = conn.domain_state("epa-loop")
        out["type"] = "type='qemu'" in conn.domain_xml("epa-loop")
    finally:
        conn.destroy_domain("epa-loop")
        conn.undefine_domain("epa-loop")
print(json.dumps(out))
"""


@pytest.mark.slow
def test_embed_opened_like_the_agent_does_starts_a_domain(tmp_path_factory: pytest.TempPathFactory) -> None:
    qemu = shutil.which("qemu-system-x86_64")
    assert qemu is not None, "qemu-system-x86_64 is not installed (./dev installs qemu-system-x86)"
    root = tmp_path_factory.mktemp("loop")  # shallow: QEMU's monitor socket path must stay short
    (root / "etc").mkdir()
    (root / "etc" / "qemu.conf").write_text(QEMU_CONF)
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROGRAM, str(root), qemu], capture_output=True, text=True, timeout=90, check=False
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"starting a domain under qemu:///embed hung past 90s: {e.stderr!r}")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["state"] == "running" and out["type"] is True
    assert out["refused"]["domain_type"] == "qemu"
    assert "the probe said no" in out["refused"]["warnings"][0]
    # This driver offers kvm (there is a /dev/kvm); whether it is used is the probe's call.
    assert out["works"]["domain_type"] == ("kvm" if Path("/dev/kvm").exists() else "qemu")
