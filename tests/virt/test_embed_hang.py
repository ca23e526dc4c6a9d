"""A libvirt call that hangs has a deadline: provoked for real under ``qemu:///embed`` (libvirt's QEMU driver
in a fresh Python process, a real QEMU binary), with a domain whose serial console log is a FIFO nobody
reads: libvirt opens it for the guest and blocks, holding the domain's lock, so the start never returns
and anything touching the domain (a listing does) would hang behind it. The start is a ``LibvirtTimeout``
naming the step, the domain and the deadline; later calls on the connection do not queue more hung
threads but fail at once naming the call they wait for; once the FIFO gets a reader the start finishes
and the domain is destroyed and undefined as usual."""

from __future__ import annotations

import pytest

from support.embed import embed_root, qemu_binary, run_program

DEADLINE_S = 20.0  # the first define probes QEMU's capabilities: seconds
PROGRAM = """
import json, os, sys, time, uuid
from epa.errors import LibvirtTimeout
from epa.libvirt_client import embedded_qemu_uri, open_connection
from epa.virt import DomainMetadata, DomainSpec, build_domain_xml

root, emulator, deadline = sys.argv[1], sys.argv[2], float(sys.argv[3])
console = os.path.join(root, "console.log")
os.mkfifo(console)
out = {}
with open_connection(embedded_qemu_uri(root), deadline) as conn:
    spec = DomainSpec(
        name="epa-hang", uuid=uuid.uuid4(), domain_type="qemu", vcpus=1, memory_mb=32,
        host_nodes=(), cpus_by_node={}, memory_by_node={}, host_cpus={}, guest_numa=False,
        emulator=emulator, metadata=DomainMetadata(server_id="hang-test", flavor="tiny"), console_log=console,
    )
    conn.define_domain(build_domain_xml(spec))
    for step, call in (("start", conn.start_domain), ("destroy", conn.destroy_domain),
                       ("undefine", conn.undefine_domain), ("list", lambda _name: conn.list_domains())):
        try:
            call("epa-hang")
            out[step] = None
        except LibvirtTimeout as e:
            out[step] = {"type": type(e).__name__, "message": str(e)}
    # A reader for the FIFO: the start that waited on it goes on, and the connection answers again.
    reader = os.open(console, os.O_RDONLY | os.O_NONBLOCK)
    started = time.monotonic()
    while True:
        try:
            out["state_after_reader"] = conn.domain_state("epa-hang")
            break
        except LibvirtTimeout:
            if time.monotonic() - started > 120:
                raise
            time.sleep(0.5)
    conn.destroy_domain("epa-hang")
    conn.undefine_domain("epa-hang")
    out["left"] = conn.list_domains()
    os.close(reader)
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_domain_start_that_hangs_is_a_timeout_naming_the_step_and_later_calls_fail_at_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = embed_root(tmp_path_factory, "hang")
    out = run_program(PROGRAM, str(root), qemu_binary(), str(DEADLINE_S), timeout_s=240)
    start = out["start"]
    assert start is not None, "the start returned although libvirt blocks on the console FIFO"
    assert start["type"] == "LibvirtTimeout"
    assert start["message"].startswith("cannot start domain 'epa-hang' on 'qemu:///embed?root=")
    assert f"no answer within {DEADLINE_S:g}s" in start["message"], start
    for step in ("destroy", "undefine", "list"):
        assert out[step] is not None, f"{step} was not refused while the start waits"
        message = out[step]["message"]
        assert "still works on an earlier call past its deadline (cannot start domain 'epa-hang'" in message, message
    assert out["state_after_reader"] is not None
    assert out["left"] == []
