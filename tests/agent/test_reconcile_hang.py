"""A domain start that hangs, through the reconciler: the real API (uvicorn in a thread, SQLite), libvirt's
QEMU driver under ``qemu:///embed`` in a fresh Python process (one embedded root per process), a server
booting a kernel image (this machine's kernel and a busybox initramfs) whose console log the test made a
FIFO nobody reads: libvirt blocks opening it, holding the domain's lock. Past the agent's deadline the
server is ``error`` naming the step (and saying its domain is not removed yet), its devices released; the
next pass finds the connection still waiting and puts that on the host; once the FIFO gets a reader the
start returns, the error server's domain is removed and the host is reachable again."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.embed import embed_root, qemu_binary, run_program

DEADLINE_S = 20.0  # the first define probes QEMU's capabilities: seconds
PROGRAM = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from support.served import serve_in_thread
from epa.agent.boot import Boot
from epa.agent.images import ImageCache
from epa.agent.reconcile import Reconciler
from epa.client import ApiClient
from epa.domain.host import HostReport, NumaCell
from epa.errors import LibvirtTimeout
from epa.inventory import Database
from epa.libvirt_client import embedded_qemu_uri, open_connection
from epa.simulate.boot_image import make_boot_image
from epa.virt import DomainType

root, work, deadline = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
db = Database.connect(f"sqlite:///{work / 'epa.sqlite'}")
db.migrate()
cells = (NumaCell(0, (0,), 4096, 0),)
out = {}
with serve_in_thread(db) as s, ApiClient(s.url, s.admin) as admin:
    token = admin.create_host("hang-1")["agent_token"]
    with ApiClient(s.url, token) as agent, open_connection(embedded_qemu_uri(str(root)), deadline) as conn:
        agent.put_inventory("hang-1", 0, cells, ())
        admin.create_flavor({"name": "tiny", "vcpus": 1, "memory_mb": 64})
        image = make_boot_image(work / "image")
        assert image is not None, "no kernel under /boot or no /bin/busybox (./dev installs them)"
        admin.create_image("blocked", kind="kernel", cmdline=image.cmdline)
        admin.upload_image_part("blocked", "kernel", image.kernel)
        admin.upload_image_part("blocked", "initrd", image.initrd)
        server = admin.create_server("hangs", "tiny", (), boot={"image": "blocked"})
        state = work / "state"
        state.mkdir()
        console = state / f"{server['id']}.console.log"
        os.mkfifo(console)
        # the agent deletes the console log of an error server: the test keeps a name for the FIFO
        os.link(console, work / "fifo")
        boot = Boot(ImageCache(state / "images", 64 * 1024 * 1024, agent), state, "hang-1")
        reconciler = Reconciler(agent, "hang-1", lambda: conn, lambda: HostReport(cells, ()), None,
                                uri=conn.uri, kvm_probe=lambda _: "no KVM here", boot=boot,
                                domain_type=DomainType.QEMU)
        reconciler.reconcile_once()
        out["server"] = admin.get_server(server["id"])
        try:
            reconciler.reconcile_once()
            out["second_pass"] = None
        except LibvirtTimeout as e:
            out["second_pass"] = str(e)
        out["host"] = admin.get_host("hang-1")["hypervisor"]
        reader = os.open(work / "fifo", os.O_RDONLY | os.O_NONBLOCK)
        started = time.monotonic()
        while True:
            try:
                reconciler.reconcile_once()
                break
            except LibvirtTimeout:
                if time.monotonic() - started > 120:
                    raise
                time.sleep(0.5)
        reconciler.reconcile_once()
        out["left"] = conn.list_domains()
        out["host_after"] = admin.get_host("hang-1")["hypervisor"]
        os.close(reader)
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_start_that_hangs_is_the_servers_error_naming_the_step_and_the_host_says_what_it_waits_for(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    qemu_binary()
    root = embed_root(tmp_path_factory, "rh")
    work = tmp_path_factory.mktemp("work")
    tests = Path(__file__).resolve().parents[1]
    out = run_program(PROGRAM, str(root), str(work), str(DEADLINE_S), str(tests), timeout_s=360)
    server = out["server"]
    name = f"epa-hangs-{server['id'][:8]}"
    reason = server["status_reason"]
    assert server["status"] == "error", server
    assert reason.startswith(f"cannot start domain '{name}' on 'qemu:///embed?root="), reason
    assert f"no answer within {DEADLINE_S:g}s" in reason and "its domain is not removed yet" in reason, reason
    # The next pass: the connection still waits for that start, and the host says so.
    assert out["second_pass"] is not None and f"cannot start domain '{name}'" in out["second_pass"]
    assert out["host"]["reachable"] is False and "still works on an earlier call" in out["host"]["reason"]
    # Once libvirt lets go, the error server's domain is removed and the hypervisor is reachable again.
    assert out["left"] == []
    assert out["host_after"]["reachable"] is True
