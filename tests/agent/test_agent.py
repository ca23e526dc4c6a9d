"""The agent loop: change detection, heartbeats, generation conflicts and backoff while the server is
away, over a simulated /sys tree and a scripted server."""

from __future__ import annotations

import logging
import random
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from epa.agent import Agent, Backoff, WarningLog, read_host_facts
from epa.client import InventoryResult, JsonObject
from epa.discovery.sysfs import scan_sysfs
from epa.domain.device_spec import ClassifiedDevice, parse_device_specs
from epa.domain.host import NumaCell
from epa.errors import GenerationConflict, InvalidInput, NotFound, ServiceUnavailable, Unauthorized

FREE_VF = "0000:18:0a.1"  # an X710 VF on vfio-pci


class ScriptedServer:
    """Keeps a generation and the last report like the real server; ``outages`` calls fail first."""

    base_url = "http://scripted"

    def __init__(self) -> None:
        self.generation = 0
        self.addresses: set[str] = set()
        self.reports: list[tuple[int, int]] = []  # (generation sent, device count)
        self.gets = 0
        self.outages = 0
        self.always_conflict = False
        self.error: Exception | None = None

    def get_host(self, name: str) -> JsonObject:
        self.gets += 1
        return {"name": name, "generation": self.generation}

    def put_inventory(
        self, host: str, generation: int, numa_cells: Sequence[NumaCell], devices: Sequence[ClassifiedDevice]
    ) -> InventoryResult:
        if self.outages:
            self.outages -= 1
            raise ServiceUnavailable("cannot reach EPA server at http://scripted: refused")
        if self.error is not None:
            raise self.error
        if self.always_conflict or generation != self.generation:
            raise GenerationConflict("stale generation", self.generation + self.always_conflict)
        now = {str(d.device.address) for d in devices}
        added, removed = sorted(now - self.addresses), sorted(self.addresses - now)
        self.addresses = now
        self.generation += 1
        self.reports.append((generation, len(devices)))
        return InventoryResult(self.generation, tuple(added), (), tuple(removed), (), len(now) - len(added))


class ScriptedStop(threading.Event):
    """A stop event whose waits return at once, recorded; it sets itself after ``waits`` of them."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.limit = waits
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        if len(self.timeouts) >= self.limit:
            self.set()
        return self.is_set()


def make_agent(server: ScriptedServer, root: Path, **kw: object) -> Agent:
    specs = parse_device_specs(['{"vendor_id": "8086", "product_id": "154c"}'])
    return Agent(
        server,
        "nfv-1",
        lambda: scan_sysfs(root),
        specs,
        lambda: read_host_facts(root, root).numa_cells,
        interval=5.0,
        rng=random.Random(7),
        **kw,  # type: ignore[arg-type]
    )


def remove_function(root: Path, address: str) -> None:
    """Take a function away the way the kernel does: its directory and its bus link go."""
    link = root / "bus" / "pci" / "devices" / address
    shutil.rmtree(link.resolve())
    link.unlink()


def test_first_scan_reports_with_the_servers_generation(nfv_sysfs: Path) -> None:
    server = ScriptedServer()
    server.generation = 5
    agent = make_agent(server, nfv_sysfs)
    cycle = agent.run_once()
    assert cycle.sent and cycle.reason == "first"
    assert server.reports == [(5, cycle.devices)] and server.gets == 1
    assert agent.generation == 6


def test_unchanged_inventory_is_not_sent_again_and_a_change_is(nfv_sysfs: Path) -> None:
    server = ScriptedServer()
    agent = make_agent(server, nfv_sysfs)
    first = agent.run_once()
    assert not agent.run_once().sent
    remove_function(nfv_sysfs, FREE_VF)
    changed = agent.run_once()
    assert changed.reason == "changed" and changed.result is not None
    assert changed.result.removed == (FREE_VF,) and changed.devices == first.devices - 1
    assert server.reports == [(0, first.devices), (1, first.devices - 1)]
    assert server.gets == 1  # the generation came from the answers after the first read


def test_a_changed_classification_counts_as_a_change(nfv_sysfs: Path) -> None:
    server = ScriptedServer()
    agent = make_agent(server, nfv_sysfs)
    agent.run_once()
    agent.specs = ()
    cycle = agent.run_once()
    assert cycle.reason == "changed"


def test_heartbeat_is_sent_every_n_scans_when_nothing_changes(nfv_sysfs: Path) -> None:
    server = ScriptedServer()
    agent = make_agent(server, nfv_sysfs, heartbeat_every=3)
    reasons = [agent.run_once().reason for _ in range(7)]
    assert reasons == ["first", None, None, "heartbeat", None, None, "heartbeat"]


class BeatingServer(ScriptedServer):
    """A server with the heartbeat route: it answers with its generation, a conflict when they differ."""

    def __init__(self) -> None:
        super().__init__()
        self.beats: list[int] = []

    def heartbeat(self, host: str, generation: int) -> int:
        self.beats.append(generation)
        if generation != self.generation:
            raise GenerationConflict("stale generation", self.generation)
        return self.generation


def test_an_unchanged_host_sends_heartbeats_and_a_full_report_now_and_then(nfv_sysfs: Path) -> None:
    server = BeatingServer()
    agent = make_agent(server, nfv_sysfs, heartbeat_every=2, full_report_every=3)
    reasons = [agent.run_once().reason for _ in range(9)]
    assert reasons == ["first", None, "heartbeat", None, "heartbeat", None, "full", None, "heartbeat"]
    assert server.beats == [1, 1, 2]
    assert [g for g, _ in server.reports] == [0, 1]


def test_a_heartbeat_the_server_does_not_recognise_is_followed_by_the_full_report(nfv_sysfs: Path) -> None:
    server = BeatingServer()
    agent = make_agent(server, nfv_sysfs, heartbeat_every=1)
    agent.run_once()
    server.generation = 7  # the server lost or replaced what it had (a restore, an operator's edit)
    cycle = agent.run_once()
    assert cycle.reason == "heartbeat" and cycle.beat is None and cycle.result is not None
    assert server.beats == [1] and server.reports[-1][0] == 7
    assert agent.generation == 8
    assert agent.run_once().beat == 8


def test_conflict_rereads_the_generation_and_resends(nfv_sysfs: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = ScriptedServer()
    agent = make_agent(server, nfv_sysfs)
    agent.run_once()
    server.generation = 9  # another writer (a second agent, an operator) moved the host on
    remove_function(nfv_sysfs, FREE_VF)
    with caplog.at_level(logging.INFO, logger="epa.agent"):
        cycle = agent.run_once()
    assert cycle.sent and agent.generation == 10
    assert server.reports[-1][0] == 9 and server.gets == 2
    assert any("generation conflict" in r.message and "we had 1, server has 9" in r.message for r in caplog.records)


def test_endless_conflicts_give_up_after_the_retries(nfv_sysfs: Path) -> None:
    server = ScriptedServer()
    server.always_conflict = True
    agent = make_agent(server, nfv_sysfs, conflict_retries=2)
    with pytest.raises(GenerationConflict):
        agent.run_once()
    assert server.gets == 3 and server.reports == []


def test_backoff_is_capped_exponential_with_jitter() -> None:
    backoff = Backoff(base=1.0, cap=30.0, rng=random.Random(1))
    for attempt in range(12):
        ceiling = min(30.0, 2.0**attempt)
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert backoff.delay(10_000) <= 30.0


def test_run_backs_off_while_unreachable_then_returns_to_the_interval(
    nfv_sysfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ScriptedServer()
    server.outages = 4
    agent = make_agent(server, nfv_sysfs, max_backoff=6.0)
    stop = ScriptedStop(waits=6)
    with caplog.at_level(logging.INFO, logger="epa.agent"):
        agent.run(stop)
    expected = Backoff(2.0, 6.0, random.Random(7))
    assert stop.timeouts[:4] == [expected.delay(n) for n in range(4)]
    assert stop.timeouts[0] is not None and 1.0 <= stop.timeouts[0] <= 2.0
    assert all(t is not None and t <= 6.0 for t in stop.timeouts[:4])
    assert stop.timeouts[4:] == [5.0, 5.0]  # reported, then an unchanged scan: back to the interval
    assert len(server.reports) == 1
    messages = [r.message for r in caplog.records]
    assert messages[0].startswith("agent started: host nfv-1, server http://scripted")
    assert sum("server unreachable" in m and "retry in" in m for m in messages) == 4
    assert any(m.startswith("reported ") and "generation 0→1" in m for m in messages)
    assert messages[-1] == "agent stopped: host nfv-1"


def test_run_keeps_going_after_other_errors(nfv_sysfs: Path) -> None:
    server = ScriptedServer()
    server.error = NotFound("host nfv-1 does not exist")
    agent = make_agent(server, nfv_sysfs)
    stop = ScriptedStop(waits=3)
    agent.run(stop)
    assert len(stop.timeouts) == 3 and server.reports == []
    assert stop.timeouts[0] is not None and stop.timeouts[0] <= 2.0


def test_a_rejected_token_ends_the_loop(nfv_sysfs: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = ScriptedServer()
    server.error = Unauthorized("unknown token")
    agent = make_agent(server, nfv_sysfs)
    with caplog.at_level(logging.INFO, logger="epa.agent"), pytest.raises(Unauthorized):
        agent.run(ScriptedStop(waits=100))
    assert caplog.records[-1].message == "agent stopped: host nfv-1"


def test_stop_interrupts_a_long_wait(nfv_sysfs: Path) -> None:
    server = ScriptedServer()
    agent = make_agent(server, nfv_sysfs)
    agent.interval = 3600.0
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    try:
        for _ in range(500):
            if server.reports:
                break
            time.sleep(0.01)
        assert server.reports
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_warnings_are_logged_once_while_they_last(caplog: pytest.LogCaptureFixture) -> None:
    log = WarningLog(logging.getLogger("epa.agent"))
    with caplog.at_level(logging.WARNING, logger="epa.agent"):
        log.update(["a", "b"])
        log.update(["a", "b"])
        log.update(["b"])
        log.update(["a"])
    assert [r.message for r in caplog.records] == ["a", "b", "a"]


@pytest.mark.parametrize(("interval", "heartbeat"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bad_settings_are_refused(nfv_sysfs: Path, interval: float, heartbeat: int) -> None:
    with pytest.raises(InvalidInput):
        Agent(
            ScriptedServer(),
            "h",
            lambda: scan_sysfs(nfv_sysfs),
            (),
            tuple,
            interval,
            heartbeat_every=heartbeat,
        )
