"""A hypervisor the agent cannot reach is visible, not silent: the host says so with libvirt's reason and
every server waiting to be built says why it waits; when the hypervisor answers again the servers are
built and the host says which domain type the agent makes; a daemon that takes the connection and never
answers is the same after the agent's deadline. VF provisioning the host refuses is on the host too, not
only in the agent's log. The real API (uvicorn in a thread, SQLite), real libvirt errors (a daemon socket
nobody listens on, one nobody answers on), then libvirt's ``test:///`` driver."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from epa.agent.reconcile import Reconciler
from epa.agent.sriov_provision import provisioning
from epa.client import ApiClient
from epa.config.sriov import PfSelector, VfDriver, VfProvision
from epa.discovery.sysfs import scan_sysfs
from epa.domain.device_spec import classify, parse_device_specs
from epa.domain.host import HostReport, NumaCell
from epa.errors import LibvirtError, LibvirtTimeout
from epa.inventory import Database
from epa.libvirt_client import LibvirtConnection, open_connection
from epa.simulate.hosts import nfv_host
from epa.simulate.libvirt_node import write_node_xml
from support.served import serve_in_thread

HOST = "nfv-1"


@pytest.fixture
def apis(sqlite_db: Database) -> Iterator[tuple[ApiClient, ApiClient]]:
    with serve_in_thread(sqlite_db) as s, ApiClient(s.url, s.admin) as admin:
        token = admin.create_host(HOST)["agent_token"]
        with ApiClient(s.url, token) as agent:
            yield admin, agent


def test_an_unreachable_hypervisor_is_on_the_host_and_its_waiting_servers_until_it_answers(
    apis: tuple[ApiClient, ApiClient], nfv_sysfs: Path, tmp_path: Path
) -> None:
    admin, agent = apis
    cells = (NumaCell(0, tuple(range(20)), 64_000, 0), NumaCell(1, tuple(range(20, 40)), 64_000, 1))
    specs = parse_device_specs(['{"vendor_id": "8086", "product_id": "37c9"}'])
    classified, _ = classify(specs, scan_sysfs(nfv_sysfs).devices)
    agent.put_inventory(HOST, 0, cells, classified)
    admin.create_flavor({"name": "small", "vcpus": 1, "memory_mb": 512})
    created = admin.create_server("waits", "small")
    dead = f"qemu+unix:///system?socket={tmp_path / 'nobody-listens.sock'}"
    reachable: list[LibvirtConnection] = []

    def connect() -> LibvirtConnection:
        return reachable[0] if reachable else open_connection(dead)

    reconciler = Reconciler(
        agent, HOST, connect, lambda: HostReport(cells, classified), None, uri=dead, kvm_probe=lambda _: None
    )
    for _ in range(2):  # the second pass finds the reason already there and leaves it
        with pytest.raises(LibvirtError, match="cannot connect to libvirt"):
            reconciler.reconcile_once()
    host = admin.get_host(HOST)["hypervisor"]
    assert host["reachable"] is False and host["uri"] == dead
    assert "nobody-listens.sock" in host["reason"] and host["reason"].startswith("waiting for the hypervisor")
    waiting = admin.get_server(created["id"])
    assert waiting["status"] == "scheduled" and waiting["status_reason"] == host["reason"]

    with open_connection(write_node_xml(nfv_host(), tmp_path / "node.xml")) as conn:
        reachable.append(conn)
        reconciler.reconcile_once()
        reconciler.reconcile_once()
        built = admin.get_server(created["id"])
        assert built["status"] == "active" and built["status_reason"] is None
        host = admin.get_host(HOST)["hypervisor"]
        assert host["reachable"] is True and host["reason"] is None and host["domain_type"] == "test"


def test_a_daemon_that_takes_the_connection_and_never_answers_is_unreachable_after_the_deadline(
    apis: tuple[ApiClient, ApiClient], tmp_path: Path
) -> None:
    admin, agent = apis
    cells = (NumaCell(0, (0, 1), 64_000, 0),)
    agent.put_inventory(HOST, 0, cells, ())
    admin.create_flavor({"name": "small", "vcpus": 1, "memory_mb": 512})
    created = admin.create_server("waits", "small")
    # A wedged libvirtd: its socket accepts (the kernel's backlog does) and nothing ever answers, so
    # libvirt's remote driver waits for the reply to its first call for ever.
    path = tmp_path / "wedged.sock"
    wedged = f"qemu+unix:///system?socket={path}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(8)
        reconciler = Reconciler(
            agent,
            HOST,
            lambda: open_connection(wedged, 2.0),
            lambda: HostReport(cells, ()),
            None,
            uri=wedged,
            kvm_probe=lambda _: None,
        )
        with pytest.raises(LibvirtTimeout, match="no answer within 2s"):
            reconciler.reconcile_once()
    host = admin.get_host(HOST)["hypervisor"]
    assert host["reachable"] is False and "wedged.sock" in host["reason"], host
    assert "no answer within 2s" in host["reason"], host
    waiting = admin.get_server(created["id"])
    assert waiting["status"] == "scheduled" and waiting["status_reason"] == host["reason"]


def test_vf_provisioning_the_host_refuses_is_on_the_host_until_a_pass_has_none(
    apis: tuple[ApiClient, ApiClient], nfv_sysfs: Path, tmp_path: Path
) -> None:
    admin, agent = apis
    cells = (NumaCell(0, (0, 1), 64_000, 0),)
    (tmp_path / "proc").mkdir()
    too_many = [VfProvision(PfSelector.parse("ens785f0"), 65, VfDriver.DEFAULT)]
    scan = provisioning(too_many, nfv_sysfs, tmp_path / "proc", lambda: scan_sysfs(nfv_sysfs))
    with open_connection(write_node_xml(nfv_host(), tmp_path / "node.xml")) as conn:
        reconciler = Reconciler(
            agent,
            HOST,
            lambda: conn,
            lambda: HostReport(cells, ()),
            None,
            kvm_probe=lambda _: None,
            host_warnings=lambda: scan.errors,
        )
        scan()
        reconciler.reconcile_once()
        refused = "PF 0000:18:00.0 (ens785f0): num_vfs (65) is more than its sriov_totalvfs (64)"
        assert admin.get_host(HOST)["hypervisor"]["warnings"] == [refused]
        assert scan().warnings[0] == refused  # and still the agent log's, once while it persists
        reconciler.reconcile_once()
        assert admin.get_host(HOST)["hypervisor"]["warnings"] == [refused]
        scan.provisions = [VfProvision(PfSelector.parse("ens785f0"), 8, VfDriver.DEFAULT)]
        scan()
        reconciler.reconcile_once()
        host = admin.get_host(HOST)["hypervisor"]
        assert host["warnings"] == [] and host["reachable"] is True
