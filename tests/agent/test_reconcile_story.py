"""The reconciler against the real API (uvicorn in a thread, SQLite) and libvirt's ``test:///`` driver on
the simulated NFV host, with the simulated PF driver holding the VF settings: build, stop/start, delete,
a crash mid-build, libvirt refusing a detach, an orphan domain and a foreign domain holding a device."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from epa.agent.domain_build import domain_name, server_view
from epa.agent.reconcile import Reconciler
from epa.client import ApiClient
from epa.discovery.sysfs import scan_sysfs
from epa.domain.address import PciAddress
from epa.domain.device_spec import classify, parse_device_specs
from epa.domain.host import HostReport, NumaCell
from epa.hostnet.simulated import SimVf, read_vf_states, simulated_netlink
from epa.hostnet.vf import apply_vf_config
from epa.inventory import Database
from epa.libvirt_client import LibvirtConnection, open_connection
from epa.simulate.hosts import nfv_host
from epa.simulate.libvirt_node import write_node_xml
from epa.virt import DomainMetadata, DomainSpec, HostdevSpec, build_domain_xml, parse_domain_devices
from support.served import serve_in_thread

HOST = "nfv-1"
SPECS = [
    '{"vendor_id": "8086", "product_id": "37c9"}',
    '{"vendor_id": "8086", "product_id": "154c", "physical_network": "physnet2", "trusted": "yes"}',
    '{"vendor_id": "10de", "managed": "no"}',
]
DIRECT = {"physnet": "physnet2", "vnic_type": "direct", "trusted": True, "vlan": 100}


@dataclass
class World:
    admin: ApiClient
    agent: ApiClient
    conn: LibvirtConnection
    sysfs: Path
    reconciler: Reconciler

    def new_reconciler(self) -> Reconciler:
        cells = (NumaCell(0, tuple(range(20)), 64_000, 0), NumaCell(1, tuple(range(20, 40)), 64_000, 1))
        classified, _ = classify(parse_device_specs(SPECS), scan_sysfs(self.sysfs).devices)
        netlink = simulated_netlink(self.sysfs)
        return Reconciler(
            self.agent,
            HOST,
            lambda: self.conn,
            lambda: HostReport(cells, classified),
            lambda config: apply_vf_config(config, netlink),
        )

    def server(self, server_id: str) -> dict[str, Any]:
        return self.admin.get_server(server_id)

    def statuses(self, server: dict[str, Any]) -> set[str]:
        return {self.admin.get_device(HOST, d["address"])["status"] for d in server["devices"]}

    def domain_names(self) -> list[str]:
        return [name for name, _, _ in self.conn.list_domains()]


@pytest.fixture
def served(sqlite_db: Database) -> Iterator[tuple[str, str]]:
    with serve_in_thread(sqlite_db) as s:
        yield s.url, s.admin


@pytest.fixture
def world(served: tuple[str, str], nfv_sysfs: Path, tmp_path: Path) -> Iterator[World]:
    url, token = served
    with ApiClient(url, token) as admin:
        agent_token = admin.create_host(HOST)["agent_token"]
        with (
            ApiClient(url, agent_token) as agent,
            open_connection(write_node_xml(nfv_host(), tmp_path / "n.xml")) as conn,
        ):
            w = World(admin, agent, conn, nfv_sysfs, None)  # type: ignore[arg-type]
            w.reconciler = w.new_reconciler()
            report = w.reconciler.view()
            agent.put_inventory(HOST, 0, report.numa_cells, report.devices)
            admin.create_alias({"name": "qat", "vendor_id": "8086", "product_id": "37c9", "device_type": "type-VF"})
            admin.create_alias({"name": "t4", "vendor_id": "10de", "product_id": "1eb8"})
            admin.create_flavor({"name": "vnf", "vcpus": 2, "memory_mb": 1024, "pci_passthrough:alias": "qat:2"})
            admin.create_flavor({"name": "gpu", "vcpus": 2, "memory_mb": 1024, "pci_passthrough:alias": "t4:1"})
            yield w


def converge(w: World, server_id: str, status: str, reconciler: Reconciler | None = None) -> dict[str, Any]:
    """Run passes until the server reaches ``status`` (a few at most: each pass does what it can)."""
    for _ in range(3):
        (reconciler or w.reconciler).reconcile_once()
        server = w.server(server_id)
        if server["status"] == status:
            return server
    pytest.fail(f"server {server_id} is {server['status']} ({server['status_reason']}), not {status}")


def vf_of(w: World, address: str) -> SimVf:
    device = w.admin.get_device(HOST, address)
    pf = w.admin.get_device(HOST, device["parent_addr"])
    return read_vf_states(w.sysfs).get(pf["netdev"], {}).get(pf["vf_addrs"].index(address), SimVf())


def test_build_stop_start_delete(world: World) -> None:
    created = world.admin.create_server("vnf-1", "vnf", [DIRECT])
    assert created["status"] == "scheduled"
    active = converge(world, created["id"], "active")
    name = domain_name(server_view(active))
    assert world.conn.domain_state(name) == "running" and active["domain_state"] == "running"
    assert active["domain_uuid"] == created["id"]
    claimed = {d["address"] for d in active["devices"]}
    xml = active["domain_xml"]
    assert {str(a) for a in parse_domain_devices(xml)} == claimed
    port_vf = next(d["address"] for d in active["devices"] if d["port"] == 0)
    mac = active["ports"][0]["mac"]
    assert f"<mac address='{mac}'/>" in xml and "<tag id='100'/>" in xml
    assert vf_of(world, port_vf) == SimVf(mac, 100, 0, trusted=True, spoofchk=False)
    assert world.statuses(active) == {"claimed"} or world.statuses(active) == {"allocated"}
    assert world.reconciler.reconcile_once().actions == []  # converged: nothing more to do

    world.admin.stop_server(created["id"])
    stopped = converge(world, created["id"], "stopped")
    assert world.conn.domain_state(name) == "shutoff" and stopped["domain_state"] == "shutoff"
    world.admin.start_server(created["id"])
    converge(world, created["id"], "active")
    assert world.conn.domain_state(name) == "running"

    # Someone shuts the domain off behind EPA's back: an active server is started again.
    world.conn.destroy_domain(name)
    world.reconciler.reconcile_once()
    assert world.conn.domain_state(name) == "running"

    world.admin.delete_server(created["id"])
    assert world.server(created["id"])["status"] == "deleting"
    summary = world.reconciler.reconcile_once()
    assert any("released" in a for a in summary.actions)
    assert world.server(created["id"])["status"] == "deleted"
    assert name not in world.domain_names()
    assert vf_of(world, port_vf) == SimVf()
    assert world.statuses(active) == {"available"}


class Crash(BaseException):
    """The agent process dying: no handler of the reconciler catches it."""


@pytest.mark.parametrize(("crash_in", "left"), [("start_domain", "shutoff"), ("post_server_state", "running")])
def test_an_agent_restarted_mid_build_converges(
    world: World, monkeypatch: pytest.MonkeyPatch, crash_in: str, left: str
) -> None:
    """The agent dies after defining the domain (before starting it), or after starting it (before
    reporting it active); a new one finishes the build without a second domain."""
    created = world.admin.create_server("vnf-1", "vnf", [DIRECT])
    target: object = world.conn if crash_in == "start_domain" else world.agent
    real = getattr(target, crash_in)

    def crash(*args: Any, **kwargs: Any) -> Any:
        if crash_in == "start_domain" or kwargs.get("status") == "active":
            raise Crash(crash_in)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, crash_in, crash)
    with pytest.raises(Crash):
        world.reconciler.reconcile_once()
    monkeypatch.undo()
    assert world.server(created["id"])["status"] == "building"
    name = domain_name(server_view(created))
    assert world.conn.domain_state(name) == left

    active = converge(world, created["id"], "active", world.new_reconciler())
    assert world.domain_names() == [name] and world.conn.domain_state(name) == "running"
    assert {str(a) for a in parse_domain_devices(active["domain_xml"])} == {d["address"] for d in active["devices"]}


def test_libvirt_refusing_a_detach_is_an_error_that_leaves_nothing(world: World) -> None:
    created = world.admin.create_server("gpu-1", "gpu")
    assert [d["address"] for d in created["devices"]] == ["0000:af:00.0"]
    failed = converge(world, created["id"], "error")
    assert "cannot detach PCI device 0000:af:00.0" in failed["status_reason"]
    assert "not supported by the connection driver" in failed["status_reason"]
    assert world.domain_names() == []
    assert world.admin.get_device(HOST, "0000:af:00.0")["status"] == "available"
    # An error server stays an error: later passes change nothing and post nothing.
    assert world.reconciler.reconcile_once().actions == []


def foreign_domain(name: str, address: str, server_id: str | None = None) -> str:
    spec = DomainSpec(
        name=name,
        uuid=uuid.uuid4(),
        domain_type="test",
        vcpus=1,
        memory_mb=256,
        hostdevs=(HostdevSpec(PciAddress.parse(address)),),
        metadata=None if server_id is None else DomainMetadata(server_id, "gone"),
    )
    return build_domain_xml(spec)


def test_an_orphan_epa_domain_is_removed_and_a_foreign_one_is_left(world: World) -> None:
    world.conn.define_domain(foreign_domain("epa-ghost-12345678", "0000:3f:01.0", str(uuid.uuid4())))
    world.conn.start_domain("epa-ghost-12345678")
    world.conn.define_domain(foreign_domain("someone-else", "0000:3f:01.1"))
    summary = world.reconciler.reconcile_once()
    assert world.domain_names() == ["someone-else"]
    assert [a for a in summary.actions if "epa-ghost-12345678" in a]


def test_a_foreign_domain_holding_a_claimed_device_makes_the_server_error(world: World) -> None:
    created = world.admin.create_server("vnf-1", "vnf", [DIRECT])
    taken = created["devices"][0]["address"]
    world.conn.define_domain(foreign_domain("someone-else", taken))
    failed = converge(world, created["id"], "error")
    assert failed["status_reason"] == f"device {taken} is already used by domain 'someone-else'"
    assert world.domain_names() == ["someone-else"]
    assert world.statuses(created) == {"available"}
    port_vf = next(d["address"] for d in created["devices"] if d["port"] == 0)
    assert vf_of(world, port_vf) == SimVf()


def test_a_server_put_in_error_loses_its_domain_and_nothing_is_posted(world: World) -> None:
    created = world.admin.create_server("vnf-1", "vnf", [DIRECT])
    converge(world, created["id"], "active")
    world.admin.post_server_state(created["id"], status="error", reason="operator says so")
    before = world.server(created["id"])
    summary = world.reconciler.reconcile_once()
    assert summary.actions == [f"removed domain {domain_name(server_view(created))} (server vnf-1 is in error)"]
    assert world.domain_names() == [] and world.server(created["id"]) == before


def test_a_vf_setting_that_cannot_be_undone_at_delete_is_on_the_released_server_not_only_in_the_log(
    world: World,
) -> None:
    created = world.admin.create_server("vnf-1", "vnf", [DIRECT])
    active = converge(world, created["id"], "active")
    port_vf = next(d["address"] for d in active["devices"] if d["port"] == 0)
    pf = world.admin.get_device(HOST, world.admin.get_device(HOST, port_vf)["parent_addr"])
    index = pf["vf_addrs"].index(port_vf)
    # The VF goes away under the server (its PF's VFs cut to fewer): the driver refuses its reset (EINVAL).
    (world.sysfs / "bus" / "pci" / "devices" / pf["address"] / "sriov_numvfs").write_text(str(index))
    world.admin.delete_server(created["id"])
    gone = converge(world, created["id"], "deleted")
    reason = gone["status_reason"] or ""
    assert reason.startswith(f"released; not undone: cannot reset {pf['netdev']} VF {index} ({port_vf}): "), reason
    assert "EINVAL" in reason, reason
    assert world.statuses(active) == {"available"}
