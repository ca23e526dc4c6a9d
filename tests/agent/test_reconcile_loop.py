"""The agent's loop runs the reconciler after each report: from the host the report saw, on through its
failures (logged once while they persist), but not past a rejected token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from epa.agent import Agent, read_host_facts
from epa.client import InventoryResult, JsonObject
from epa.discovery.sysfs import scan_sysfs
from epa.domain.device_spec import ClassifiedDevice, parse_device_specs
from epa.domain.host import HostReport, NumaCell
from epa.errors import EpaError, LibvirtError, ServiceUnavailable, Unauthorized


class Server:
    base_url = "http://scripted"

    def __init__(self) -> None:
        self.generation = 0
        self.down = False

    def get_host(self, name: str) -> JsonObject:
        return {"name": name, "generation": self.generation}

    def put_inventory(
        self, host: str, generation: int, numa_cells: Sequence[NumaCell], devices: Sequence[ClassifiedDevice]
    ) -> InventoryResult:
        if self.down:
            raise ServiceUnavailable("cannot reach EPA server at http://scripted")
        self.generation += 1
        return InventoryResult(self.generation)


class Stop(threading.Event):
    """Returns from every wait at once and sets itself after ``waits`` of them."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.left = waits

    def wait(self, timeout: float | None = None) -> bool:
        self.left -= 1
        if self.left <= 0:
            self.set()
        return self.is_set()


class Reconciler:
    def __init__(self, agent: Agent, errors: list[EpaError | None]) -> None:
        self.agent = agent
        self.errors = errors
        self.seen: list[HostReport] = []

    def reconcile_once(self) -> None:
        self.seen.append(self.agent.latest_report())
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error


def make_agent(server: Server, root: Path) -> Agent:
    specs = parse_device_specs(['{"vendor_id": "8086", "product_id": "154c"}'])
    facts = read_host_facts(root, root).numa_cells
    return Agent(server, "nfv-1", lambda: scan_sysfs(root), specs, lambda: facts, interval=5.0)


def test_the_reconciler_runs_after_each_report_and_its_failures_are_logged_once(
    nfv_sysfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = make_agent(Server(), nfv_sysfs)
    failure = LibvirtError("cannot connect to libvirt at 'qemu:///system': no socket")
    reconciler = Reconciler(agent, [failure, failure, None, None])
    with caplog.at_level(logging.WARNING, logger="epa.agent"):
        agent.run(Stop(4), reconciler)
    assert len(reconciler.seen) == 4
    assert reconciler.seen[0].devices and all(r == reconciler.seen[0] for r in reconciler.seen)
    failures = [r.getMessage() for r in caplog.records if "reconciliation failed" in r.getMessage()]
    assert failures == [f"reconciliation failed (libvirt_error: {failure})"]


def test_no_reconciliation_while_the_server_is_unreachable_and_a_rejected_token_ends_the_loop(
    nfv_sysfs: Path,
) -> None:
    server = Server()
    server.down = True
    agent = make_agent(server, nfv_sysfs)
    reconciler = Reconciler(agent, [])
    agent.run(Stop(2), reconciler)
    assert reconciler.seen == []

    server.down = False
    reconciler.errors = [Unauthorized("token rejected")]
    with pytest.raises(Unauthorized):
        agent.run(Stop(5), reconciler)
    assert len(reconciler.seen) == 1


def test_latest_report_scans_when_nothing_was_seen_yet(nfv_sysfs: Path) -> None:
    agent = make_agent(Server(), nfv_sysfs)
    report = agent.latest_report()
    assert report is agent.latest_report()
    assert {c.device.address for c in report.devices} == {d.address for d in scan_sysfs(nfv_sysfs).devices}
