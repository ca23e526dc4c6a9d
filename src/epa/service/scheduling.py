"""Scheduling servers: the in-memory scheduler kept in step with the database, and claims that fall
back on the next candidate when another process got there first.

The database is the truth. Each API process keeps a ``Scheduler`` built from host snapshots and
reloads the hosts the change feed names (service.refresh) - at most once per ``refresh_seconds``, at once
when another process notified a change (PostgreSQL, ``listen``), and at once for a host whose claim
conflicted. A stale view can only cost a retry: the claim itself
re-checks everything under the host's row lock."""

from __future__ import annotations

import dataclasses
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Histogram

from epa.domain.port import Port
from epa.domain.server import ClaimedDevice
from epa.errors import Conflict
from epa.inventory import Database
from epa.inventory.aliases import known_aliases
from epa.inventory.claims import ClaimConflict, ClaimPlan, DuplicateRequest, NewServer, claim, record_unscheduled
from epa.inventory.flavors import get_flavor
from epa.inventory.notify import FeedListener
from epa.inventory.records import ServerRecord
from epa.inventory.servers import server_by_request_key
from epa.inventory.snapshots import HostSnapshot, load_snapshots
from epa.scheduler.fit import Placement
from epa.scheduler.host_state import Cell, HostState, Slot
from epa.scheduler.request import ServerRequest, build_request
from epa.scheduler.scheduler import Explanation, Scheduler, SchedulerConfig
from epa.service.refresh import ViewFollower


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    cpu_allocation_ratio: float = 1.0
    ram_allocation_ratio: float = 1.0
    refresh_seconds: float = 1.0
    # How long a heartbeat waits for others to share its transaction (service.heartbeats).
    heartbeat_flush_seconds: float = 0.02
    # Claims tried per create before giving up with a conflict error (each on a fresher view).
    max_attempts: int = 6


# Scheduling decisions take microseconds to tens of milliseconds; the tail is what matters.
DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _decision_histogram() -> Histogram:
    # In no registry: each service's app registers it in its own (api.metrics).
    return Histogram(
        "epa_scheduling_decision_seconds",
        "Time the scheduler took to rank hosts for a server (a create may decide more than once).",
        buckets=DECISION_BUCKETS,
        registry=None,
    )


@dataclass(slots=True)
class Counters:
    """What the service has done since it started (exported as metrics). Decision times go straight
    into a prometheus_client histogram: it counts each observation once however seldom it is scraped."""

    creates: int = 0
    scheduled: int = 0
    no_valid_host: int = 0
    claim_conflicts: int = 0
    decision_seconds: Histogram = field(default_factory=_decision_histogram)

    def observe(self, seconds: float) -> None:
        self.decision_seconds.observe(seconds)


def to_host_state(
    s: HostSnapshot, cpu_ratio: float, ram_ratio: float, shared: dict[Slot, Slot] | None = None
) -> HostState:
    """The scheduler's view of a snapshot. ``shared`` interns free devices: a fleet is made of a few
    hardware shapes, so most hosts' slots (address, ids, NUMA node, tags) equal other hosts' and one
    frozen object serves them all - the view then costs a dict entry per free device, not an object."""
    cells = [
        Cell(
            c.node,
            math.floor(c.cpus * cpu_ratio),
            math.floor(c.memory_mb * ram_ratio),
            c.socket,
            c.used_cpus,
            c.used_memory_mb,
        )
        for c in s.cells
    ]
    free = [
        Slot(
            d.address,
            d.vendor_id,
            d.product_id,
            d.dev_type,
            d.numa_node,
            d.parent_addr,
            d.tags,
            d.has_netdev,
            d.root,
            d.switch,
        )
        for d in s.free
    ]
    if shared is not None:
        free = [shared.setdefault(slot, slot) for slot in free]
    last = s.last_report_at.timestamp() if s.last_report_at is not None else None
    return HostState.build(
        s.name, s.enabled, last, cells, free, dict(s.vfs_in_use), s.assignable, s.images, s.busy_switches
    )


class SchedulingService:
    def __init__(
        self,
        db: Database,
        config: ServiceConfig | None = None,
        clock: Callable[[], float] = time.time,
        listen: bool = False,
    ) -> None:
        """``listen``: on PostgreSQL, hold a connection that is told of every change (``inventory.notify``):
        the view then reads the feed at once after another process changed something, and not at all while
        nothing changed. Call :meth:`close` to let it go."""
        self.db = db
        self.config = config or ServiceConfig()
        self.clock = clock
        self.listener = FeedListener(db) if listen and db.dialect == "postgresql" else None
        self._wakeups_seen: int | None = None
        scheduler_config = self.config.scheduler
        if scheduler_config.salt == 0:
            # Its own salt for each API process: processes sharing a database then pick different ones
            # of equivalent free devices and rarely collide on a claim (scheduler.fit).
            scheduler_config = dataclasses.replace(scheduler_config, salt=secrets.randbelow(2**31 - 1) + 1)
        self.scheduler = Scheduler(scheduler_config)
        self.counters = Counters()
        self._refreshed_at = -math.inf
        self._slots: dict[Slot, Slot] = {}
        alive = scheduler_config.alive_seconds
        # Liveness is re-read this far ahead of the timeout: beyond the longest gap between refreshes of
        # a view in use, and well under half the timeout (the revival rule, inventory.liveness).
        lookahead = min(2 * self.config.refresh_seconds + 2.0, alive / 4)
        self.follower = ViewFollower(db, self.scheduler, self._apply, alive, lookahead, clock)
        # One scheduler per process, used by the API's worker threads: selection, claim and accounting
        # happen under this lock so that two requests of this process never race for one device.
        self._lock = threading.Lock()

    # -- keeping the view in step with the database ------------------------------------------------

    def _apply(self, snapshots: Sequence[HostSnapshot]) -> None:
        for snap in snapshots:
            self.scheduler.update(
                to_host_state(snap, self.config.cpu_allocation_ratio, self.config.ram_allocation_ratio, self._slots)
            )

    def refresh(self, force: bool = False) -> None:
        """Follow the change feed, at most once per ``refresh_seconds`` of the service's clock, or at once when
        the listener was notified."""
        now = self.clock()
        wakeups = self.listener.wakeups() if self.listener is not None else None
        woken = wakeups is not None and wakeups != self._wakeups_seen
        if not force and not woken and now - self._refreshed_at < self.config.refresh_seconds:
            return
        started = time.perf_counter()
        # Unless the listener vouches that nothing was notified since the last read, read the feed. The count
        # was taken before the read (one that arrives during it makes the next refresh read again) and is
        # kept only once the read succeeded.
        self.follower.follow(read_feed=force or wakeups is None or woken)
        self._wakeups_seen = wakeups
        self.follower.stats.seconds += time.perf_counter() - started
        self._refreshed_at = now

    def wakeups(self) -> int:
        """Notifications (and listener reconnections) received so far; 0 without a listener."""
        return self.listener.received() if self.listener is not None else 0

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()

    def reload_host(self, name: str) -> None:
        snaps = load_snapshots(self.db, [name])
        if snaps:
            self._apply(snaps)
        else:
            self.scheduler.remove(name)

    # -- requests ------------------------------------------------------------------------------------

    def build(
        self, flavor_name: str, ports: Sequence[Port], boot: Mapping[str, Any] | None = None
    ) -> tuple[NewServer, ServerRequest]:
        flavor = get_flavor(self.db, flavor_name)
        request = build_request(flavor, known_aliases(self.db), ports)
        image: Mapping[str, Any] | None = (boot or {}).get("image")
        if image is not None:
            parts = frozenset(str(p["sha256"]) for p in image.get("parts") or [])
            request = dataclasses.replace(request, image_parts=parts)
        return NewServer("", flavor, tuple(ports)), request

    def explain(
        self, flavor_name: str, ports: Sequence[Port], boot: Mapping[str, Any] | None = None
    ) -> tuple[ServerRequest, Explanation]:
        _, request = self.build(flavor_name, ports, boot)
        with self._lock:
            self.refresh(force=True)
            return request, self.scheduler.explain(request, self.clock())

    def create_once(
        self,
        request_key: str,
        name: str,
        flavor_name: str,
        ports: Sequence[Port],
        boot: Mapping[str, Any] | None = None,
    ) -> tuple[ServerRecord, bool]:
        """``create`` made idempotent by the client's ``request_key``: the first request with that key
        creates the server, any later one (a retry after a lost answer, or a race with that retry in
        another process) gets the same server back. True when the server already existed."""
        existing = server_by_request_key(self.db, request_key)
        if existing is None:
            try:
                return self.create(name, flavor_name, ports, request_key=request_key, boot=boot), False
            except DuplicateRequest as e:
                # Another request with this key got there first (its server is committed), or the
                # insert failed for another reason, which the error then says.
                existing = server_by_request_key(self.db, request_key)
                if existing is None:
                    raise Conflict(str(e)) from e
        used = f"Idempotency-Key {request_key!r} was used for server {existing.name!r}"
        if existing.name != name or existing.flavor.get("name") != flavor_name:
            raise Conflict(
                f"{used} (flavor {existing.flavor.get('name')!r}, id {existing.id}), "
                f"not for {name!r} (flavor {flavor_name!r})"
            )
        if existing.ports != tuple(ports):
            raise Conflict(f"{used} (id {existing.id}) with other ports: {len(existing.ports)} then, {len(ports)} now")
        return existing, True

    def create(
        self,
        name: str,
        flavor_name: str,
        ports: Sequence[Port],
        request_key: str | None = None,
        boot: Mapping[str, Any] | None = None,
    ) -> ServerRecord:
        """Schedule and claim; a server in ``error`` (with the reason) when no host can take it.
        ``DuplicateRequest`` when ``request_key`` is already a server's."""
        template, request = self.build(flavor_name, ports, boot)
        server = NewServer(name, template.flavor, template.ports, request_key, boot)
        with self._lock:
            self.counters.creates += 1
            self.refresh()
            fresh = False
            for _ in range(self.config.max_attempts):
                started = time.perf_counter()
                selection = self.scheduler.select(request, self.clock())
                self.counters.observe(time.perf_counter() - started)
                if not selection.ranked and not fresh:
                    # The view may be up to refresh_seconds old (a host enabled or reported just now):
                    # never refuse on it; look again at the database first.
                    self.refresh(force=True)
                    fresh = True
                    continue
                if not selection.ranked:
                    why = self.scheduler.why_not(request, self.clock())
                    self.counters.no_valid_host += 1
                    return record_unscheduled(self.db, server, f"no valid host: {why}")
                for ranked in selection.ranked:
                    record = self._try_claim(server, request, ranked.placement)
                    if record is not None:
                        self.counters.scheduled += 1
                        return record
                self.refresh(force=True)
                fresh = True
            return record_unscheduled(
                self.db, server, f"gave up after {self.config.max_attempts} rounds of conflicting claims"
            )

    def _try_claim(self, server: NewServer, request: ServerRequest, p: Placement) -> ServerRecord | None:
        devices = tuple(
            ClaimedDevice(addr, i, request.devices[i].label, request.devices[i].port)
            for i, group in enumerate(p.devices)
            for addr in group
        )
        plan = ClaimPlan(
            p.host,
            p.nodes,
            p.cpus_by_node,
            p.memory_by_node,
            devices,
            self.config.cpu_allocation_ratio,
            self.config.ram_allocation_ratio,
        )
        try:
            record = claim(self.db, server, plan)
        except ClaimConflict:
            self.counters.claim_conflicts += 1
            self.reload_host(p.host)
            return None
        # The claim is on the change feed too: the next refresh reloads the host from the database.
        self.scheduler.account(p)
        return record

    def released(self, host: str | None) -> None:
        """A server's devices went back to the pool: reload that host's view."""
        if host is not None:
            with self._lock:
                self.reload_host(host)
