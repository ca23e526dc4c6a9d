"""Claims and releases: a placement commits whole or not at all, checked against the database (the
PF/VF rule, CPU and memory per NUMA node, the host's state), and a release gives everything back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text

from epa.domain.address import PciAddress
from epa.domain.alias import parse_pci_requests
from epa.domain.flavor import Flavor
from epa.domain.host import HostReport
from epa.domain.port import Port
from epa.domain.server import ClaimedDevice, InvalidServerTransition, ServerStatus
from epa.domain.status import DeviceStatus
from epa.errors import InvalidInput, NotFound
from epa.inventory import Database, apply_report, create_host, get_device, list_devices, set_host_enabled
from epa.inventory.claims import (
    ClaimConflict,
    ClaimPlan,
    NewServer,
    claim,
    record_unscheduled,
    release,
    set_server_status,
)
from epa.inventory.lifecycle import report, request_delete, teardown_done
from epa.inventory.records import ServerRecord
from epa.inventory.servers import get_server, list_servers, servers_on_host
from epa.inventory.snapshots import host_versions

S = DeviceStatus
PF = "0000:18:00.0"
VFS = [f"0000:18:02.{i}" for i in range(8)]
PF2 = "0000:18:00.1"
T4 = "0000:af:00.0"
ROOT_PORT = "0000:00:00.0"
MLX_PF = "0000:5e:00.0"
UUID = "6f1f6c63-4b7c-4b8e-9d53-0c1d2e3f4a5b"


def new_server(name: str = "vm-1", vcpus: int = 4, memory_mb: int = 4096, numa_nodes: int = 1) -> NewServer:
    flavor = Flavor(name="small", vcpus=vcpus, memory_mb=memory_mb, numa_nodes=numa_nodes)
    return NewServer(name, flavor, (Port("physnet1"),))


def take(
    db: Database,
    addresses: list[str],
    host: str = "nfv-1",
    node: int = 0,
    vcpus: int = 4,
    memory_mb: int = 4096,
    **kwargs: Any,
) -> ServerRecord:
    devices = tuple(ClaimedDevice(PciAddress.parse(a), i, f"req{i}") for i, a in enumerate(addresses))
    plan = ClaimPlan(host, (node,), {node: vcpus}, {node: memory_mb}, devices, **kwargs)
    return claim(db, new_server(vcpus=vcpus, memory_mb=memory_mb), plan)


def held(address: str, index: int, label: str, port: int | None = None) -> ClaimedDevice:
    return ClaimedDevice(PciAddress.parse(address), index, label, port)


def state(db: Database, host: str = "nfv-1") -> tuple[object, ...]:
    """Everything a failed claim must leave as it was."""
    devices, _ = list_devices(db, host=host)
    return (
        [(s.id, s.status) for s in list_servers(db, include_deleted=True)],
        {str(d.device.address): (d.status, d.owner, d.vanished) for d in devices},
        host_versions(db)[host],
    )


def status(db: Database, address: str, host: str = "nfv-1") -> S:
    return get_device(db, host, address).status


@pytest.fixture
def host(db: Database, nfv_report: HostReport) -> str:
    create_host(db, "nfv-1")
    apply_report(db, "nfv-1", 0, nfv_report)
    return "nfv-1"


def test_claim_records_the_server_and_claims_its_devices(db: Database, host: str) -> None:
    record = take(db, [VFS[0], T4])
    assert record.status is ServerStatus.SCHEDULED
    assert (record.host, record.host_nodes, record.cells) == (host, (0,), ((0, 4, 4096),))
    assert record.devices == (held(VFS[0], 0, "req0"), held(T4, 1, "req1"))
    assert record.flavor["vcpus"] == 4 and record.flavor["pci_passthrough:alias"] == ""
    assert record.ports == (Port("physnet1"),) == get_server(db, record.id).ports
    assert get_server(db, record.id) == record
    for address in (VFS[0], T4):
        device = get_device(db, host, address)
        assert (device.status, device.owner) == (S.CLAIMED, record.id)
    # Claiming a VF makes its PF unavailable; its sister VFs stay free.
    assert status(db, PF) is S.UNAVAILABLE
    assert [status(db, v) for v in VFS[1:]] == [S.AVAILABLE] * 7
    assert host_versions(db)[host] == (1, 1)


def test_claiming_a_pf_makes_its_vfs_unavailable(db: Database, host: str) -> None:
    record = take(db, [PF])
    assert get_device(db, host, PF).owner == record.id
    assert [status(db, v) for v in VFS] == [S.UNAVAILABLE] * 8
    assert status(db, "0000:18:0a.0") is S.AVAILABLE  # the other PF's family never moved


def _remove_t4(db: Database, report: HostReport) -> None:
    apply_report(
        db, "nfv-1", 1, replace(report, devices=tuple(d for d in report.devices if str(d.device.address) != T4))
    )


Setup = Callable[[Database, HostReport], object]
CONFLICTS: list[tuple[str, Setup, dict[str, Any], str]] = [
    ("device taken", lambda db, r: take(db, [VFS[0]]), {"addresses": [VFS[0]]}, "is claimed by server"),
    ("PF of a claimed VF", lambda db, r: take(db, [VFS[0]]), {"addresses": [PF]}, f"its VF {VFS[0]} is claimed"),
    ("VF of a claimed PF", lambda db, r: take(db, [PF]), {"addresses": [VFS[3]]}, f"its PF {PF} is claimed"),
    ("PF and own VF", lambda db, r: None, {"addresses": [VFS[2], PF]}, "cannot be claimed together"),
    ("CPU over a node", lambda db, r: take(db, [], vcpus=30), {"addresses": [T4], "vcpus": 11}, "10 vCPUs free"),
    ("memory over", lambda db, r: None, {"addresses": [], "memory_mb": 192_001}, "192000 MB of memory free"),
    ("disabled host", lambda db, r: set_host_enabled(db, "nfv-1", False), {"addresses": [T4]}, "disabled"),
    ("removed device", _remove_t4, {"addresses": [T4]}, "gone from the host"),
    ("unassignable device", lambda db, r: None, {"addresses": [MLX_PF]}, "not assignable"),
    ("unassignable root port", lambda db, r: None, {"addresses": [ROOT_PORT]}, "not assignable"),
    ("unknown device", lambda db, r: None, {"addresses": ["0000:99:00.0"]}, "does not exist"),
    ("unknown NUMA node", lambda db, r: None, {"addresses": [T4], "node": 7}, "NUMA node 7 does not exist"),
    ("unknown host", lambda db, r: None, {"addresses": [T4], "host": "nfv-9"}, "host does not exist"),
]


@pytest.mark.parametrize(("setup", "ask", "match"), [c[1:] for c in CONFLICTS], ids=[c[0] for c in CONFLICTS])
def test_a_refused_claim_leaves_nothing_behind(
    db: Database, host: str, nfv_report: HostReport, setup: Setup, ask: dict[str, Any], match: str
) -> None:
    setup(db, nfv_report)
    before = state(db)
    with pytest.raises(ClaimConflict, match=match) as caught:
        take(db, **ask)
    assert caught.value.code == "claim_conflict"
    assert state(db) == before


def test_allocation_ratios_stretch_a_node(db: Database, host: str) -> None:
    with pytest.raises(ClaimConflict, match="40 vCPUs free"):
        take(db, [], vcpus=41)
    take(db, [], vcpus=41, cpu_ratio=1.5)
    with pytest.raises(ClaimConflict, match="19 vCPUs free"):
        take(db, [], vcpus=20, cpu_ratio=1.5)
    take(db, [], vcpus=1, memory_mb=200_000, cpu_ratio=1.5, ram_ratio=1.1)


def test_the_unique_claim_is_the_backstop(db: Database, host: str) -> None:
    """Even if a device's status said it was free, the database refuses a second claim on it."""
    other = record_unscheduled(db, new_server("squatter"), "test")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO claims (server_id, device_id, request_index, request_label, created_at) "
                "SELECT :sid, id, 0, 'x', updated_at FROM devices WHERE address = :address"
            ),
            {"sid": other.id, "address": T4},
        )
    before = state(db)
    with pytest.raises(ClaimConflict, match="already in another claim"):
        take(db, [VFS[0], T4])
    assert state(db) == before


def test_release_gives_everything_back(db: Database, host: str) -> None:
    before = state(db)
    record = take(db, [VFS[0], T4, PF2], vcpus=8)
    released = release(db, record.id)
    assert released.status is ServerStatus.DELETED
    assert (released.devices, released.cells, released.host) == ((), (), host)
    _servers, devices, versions = state(db)
    assert devices == before[1]
    assert versions == (1, 2)
    assert get_device(db, host, T4).owner is None
    # Twice is fine: nothing moves, the claim generation included.
    assert release(db, record.id) == released
    assert host_versions(db)[host] == (1, 2)
    with pytest.raises(NotFound, match="nope"):
        release(db, "nope")


def test_a_device_that_vanished_while_claimed_is_removed_on_release(
    db: Database, host: str, nfv_report: HostReport
) -> None:
    record = take(db, [T4, VFS[1]])
    _remove_t4(db, nfv_report)
    assert (get_device(db, host, T4).status, get_device(db, host, T4).vanished) == (S.CLAIMED, True)
    release(db, record.id)
    t4 = get_device(db, host, T4)
    assert (t4.status, t4.owner, t4.vanished) == (S.REMOVED, None, False)
    assert status(db, PF) is S.AVAILABLE


def test_server_status_transitions(db: Database, host: str) -> None:
    record = take(db, [T4])
    up = set_server_status(db, record.id, "building")
    assert up.status is ServerStatus.BUILDING and up.devices == record.devices
    up = set_server_status(db, record.id, ServerStatus.ACTIVE, domain_uuid="6f1f6c63-4b7c-4b8e-9d53-0c1d2e3f4a5b")
    assert up.domain_uuid == "6f1f6c63-4b7c-4b8e-9d53-0c1d2e3f4a5b"
    assert set_server_status(db, record.id, "stopped").domain_uuid == up.domain_uuid
    set_server_status(db, record.id, "active")
    with pytest.raises(InvalidServerTransition, match="from active to scheduled"):
        set_server_status(db, record.id, "scheduled")
    with pytest.raises(InvalidServerTransition, match=r"from active to deleted \(releasing"):
        set_server_status(db, record.id, "deleted")
    failed = set_server_status(db, record.id, "error", reason="libvirt said no")
    assert (failed.status, failed.status_reason) == (ServerStatus.ERROR, "libvirt said no")
    set_server_status(db, record.id, "deleting")
    release(db, record.id)
    with pytest.raises(InvalidServerTransition, match="from deleted to error"):
        set_server_status(db, record.id, "error")
    with pytest.raises(InvalidInput, match="'running'"):
        set_server_status(db, record.id, "running")
    with pytest.raises(NotFound):
        set_server_status(db, "nope", "active")


def test_unscheduled_servers_and_listing(db: Database, host: str) -> None:
    lost = record_unscheduled(db, new_server("lost"), "no valid host: 0 free GPUs")
    assert (lost.status, lost.host, lost.host_nodes, lost.status_reason) == (
        ServerStatus.ERROR,
        None,
        (),
        "no valid host: 0 free GPUs",
    )
    assert get_server(db, lost.id) == lost
    a, b = take(db, [T4]), take(db, [VFS[0]])
    release(db, b.id)
    assert [s.id for s in list_servers(db)] == [lost.id, a.id]
    assert [s.id for s in list_servers(db, include_deleted=True)] == [lost.id, a.id, b.id]
    assert [s.id for s in list_servers(db, host=host)] == [a.id]
    assert [s.id for s in list_servers(db, status="deleted")] == [b.id]
    assert list_servers(db, host="nowhere") == []
    assert [s.id for s in servers_on_host(db, host)] == [a.id]
    with pytest.raises(NotFound):
        servers_on_host(db, "nowhere")
    with pytest.raises(InvalidInput, match="server status"):
        list_servers(db, status="running")
    with pytest.raises(NotFound, match="nope"):
        get_server(db, "nope")
    with pytest.raises(InvalidInput, match="server: name"):
        record_unscheduled(db, new_server("no spaces"), "x")


def test_listing_servers_costs_the_same_for_one_or_many(
    db: Database, host: str, count_queries: Callable[[], Any]
) -> None:
    take(db, [T4])
    with count_queries() as one:
        list_servers(db)
    for vf in VFS[:5]:
        take(db, [vf])
    with count_queries() as many:
        assert len(list_servers(db)) == 6
    assert len(one) == len(many)


@pytest.mark.parametrize(
    ("nodes", "cpus", "memory", "devices", "match"),
    [
        ((0, 1), {0: 4}, {0: 4096}, [], "host_nodes"),
        ((0,), {0: 3}, {0: 4096}, [], "add up to the flavor's 4"),
        ((0,), {1: 4}, {0: 4096}, [], "cpus by node"),
        ((0,), {0: 4}, {0: 4096}, [T4, T4], "listed twice"),
    ],
)
def test_claims_the_caller_got_wrong_are_invalid_input(
    db: Database, host: str, nodes: tuple[int, ...], cpus: dict[int, int], memory: dict[int, int],
    devices: list[str], match: str,
) -> None:  # fmt: skip
    with pytest.raises(InvalidInput, match=match):
        claim(db, new_server(), ClaimPlan(host, nodes, cpus, memory, tuple(held(a, 0, "r") for a in devices)))
    with pytest.raises(InvalidInput, match="cpu_ratio"):
        take(db, [], cpu_ratio=0.0)
    assert list_servers(db) == []


def test_a_claim_over_two_numa_nodes(db: Database, host: str) -> None:
    server = new_server(vcpus=8, memory_mb=8192, numa_nodes=2)
    record = claim(db, server, ClaimPlan(host, (1, 0), {1: 4, 0: 4}, {1: 4096, 0: 4096}, (held(T4, 0, "gpu"),)))
    assert record.host_nodes == (1, 0)
    assert get_server(db, record.id).cells == ((0, 4, 4096), (1, 4, 4096))


@pytest.mark.parametrize("late", [ServerStatus.BUILDING, ServerStatus.ACTIVE, ServerStatus.ERROR])
def test_a_delete_wins_over_an_agent_report_that_raced_with_it(db: Database, host: str, late: ServerStatus) -> None:
    """The agent reports what its build did after the user deleted the server: the report records the
    domain, the server stays on its way out (an ``error`` report ends it ``deleted``, never ``error``)."""
    record = take(db, [T4, VFS[0]])
    set_server_status(db, record.id, "building")
    request_delete(db, record.id)
    after = report(db, record.id, late, reason="libvirt said no", domain_state="shutoff", domain_uuid=UUID)
    if late is ServerStatus.ERROR:
        assert (after.status, after.status_reason) == (ServerStatus.DELETED, "deleting: waiting for the host's agent")
        assert after.devices == ()
        assert {get_device(db, host, a).status for a in (T4, VFS[0])} == {S.AVAILABLE}
    else:
        assert (after.status, after.domain_state, after.domain_uuid) == (ServerStatus.DELETING, "shutoff", UUID)
        assert get_device(db, host, T4).status is S.CLAIMED
        assert teardown_done(db, record.id).status is ServerStatus.DELETED


def test_a_failed_build_without_a_delete_is_an_error_that_frees_the_devices(db: Database, host: str) -> None:
    record = take(db, [T4])
    set_server_status(db, record.id, "building")
    failed = report(db, record.id, ServerStatus.ERROR, reason="cannot detach 0000:af:00.0")
    assert (failed.status, failed.status_reason) == (ServerStatus.ERROR, "cannot detach 0000:af:00.0")
    assert get_device(db, host, T4).status is S.AVAILABLE
    # It keeps its host for the record: deleting it goes through the host's agent like any other.
    assert request_delete(db, record.id).status is ServerStatus.DELETING
    assert teardown_done(db, record.id).status is ServerStatus.DELETED


def test_a_claim_stores_which_port_each_device_backs(db: Database, host: str) -> None:
    server = NewServer("vm", Flavor(name="f", vcpus=4, memory_mb=4096), (Port("physnet1"),))
    plan = ClaimPlan(host, (0,), {0: 4}, {0: 4096}, (held(T4, 0, "alias t4"), held(VFS[0], 1, "port 0", port=0)))
    record = claim(db, server, plan)
    assert [(str(d.address), d.port) for d in record.devices] == [(T4, None), (VFS[0], 0)]
    assert get_server(db, record.id).devices == record.devices


def test_a_claim_whose_device_backs_a_port_the_server_lacks_is_invalid_input(db: Database, host: str) -> None:
    plan = ClaimPlan(host, (0,), {0: 4}, {0: 4096}, (held(VFS[0], 0, "port 3", port=3),))
    with pytest.raises(InvalidInput, match="backs port 3; the server has 1"):
        claim(db, new_server(), plan)
    assert list_servers(db) == []


def test_migration_0010_fills_in_the_port_of_claims_made_before_it(db: Database, host: str) -> None:
    """Claims made before 0010 get the port their device backs: the request index less the flavor's aliases."""
    from alembic import command
    from alembic.config import Config

    from epa.inventory.db import MIGRATIONS

    flavor = Flavor(name="f", vcpus=4, memory_mb=4096, pci_alias="t4:1", pci_requests=parse_pci_requests("t4:1"))
    server = NewServer("vm", flavor, (Port("physnet1"),))
    plan = ClaimPlan(host, (0,), {0: 4}, {0: 4096}, (held(T4, 0, "alias t4"), held(VFS[0], 1, "port 0", port=0)))
    record = claim(db, server, plan)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    for step, revision in ((command.downgrade, "0009"), (command.upgrade, "head")):
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, revision)
    assert get_server(db, record.id).devices == record.devices
