"""The agent loop: discover the host, classify with the device_spec, and report the inventory to the
API whenever it changed, riding out generation conflicts and server outages. An unchanged host sends a
cheap heartbeat instead (its generation, no device list), and a full report now and then as a safety net."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from epa.client import InventoryResult, JsonObject, inventory_json
from epa.discovery import ScanResult
from epa.domain.device_spec import ClassifiedDevice, DeviceSpec, classify
from epa.domain.host import HostReport, NumaCell
from epa.errors import (
    EpaError,
    Forbidden,
    GenerationConflict,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)

log = logging.getLogger("epa.agent")


class InventoryApi(Protocol):
    """The two routes an agent uses (``epa.client.ApiClient`` has them)."""

    base_url: str

    def get_host(self, name: str) -> JsonObject: ...

    def put_inventory(
        self,
        host: str,
        generation: int,
        numa_cells: Sequence[NumaCell],
        devices: Sequence[ClassifiedDevice],
    ) -> InventoryResult: ...


@runtime_checkable
class HeartbeatApi(Protocol):
    """The heartbeat route (``epa.client.ApiClient`` has it); a client without it gets full reports."""

    def heartbeat(self, host: str, generation: int) -> int: ...


class Reconcile(Protocol):
    """What the loop runs after each inventory report (``epa.agent.reconcile.Reconciler`` is one)."""

    def reconcile_once(self) -> object: ...


class WarningLog:
    """Logs each warning once while it persists: a scan every few seconds must not repeat them all."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._logger = logger
        self._current: set[str] = set()

    def update(self, warnings: Iterable[str]) -> None:
        now = list(dict.fromkeys(warnings))
        for warning in now:
            if warning not in self._current:
                self._logger.warning("%s", warning)
        self._current = set(now)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: attempt ``n`` waits between half and all of
    ``min(cap, base * 2**n)``, so that agents cut off together do not return in lockstep."""

    base: float
    cap: float
    rng: random.Random

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 32))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class Cycle:
    """What one ``run_once`` did: ``reason`` is ``first``, ``changed``, ``full`` (the safety net) or
    ``heartbeat`` when it told the server something, None when it had nothing to say. ``result`` is the
    server's answer to a full report; ``beat`` the generation a heartbeat confirmed (a heartbeat the
    server answered with another generation is followed by a full report, ``result``)."""

    devices: int
    reason: str | None = None
    result: InventoryResult | None = None
    beat: int | None = None

    @property
    def sent(self) -> bool:
        return self.result is not None or self.beat is not None


class Agent:
    """Reports one host's inventory. ``scan`` reads its PCI functions, ``facts`` its NUMA cells;
    ``interval`` is the seconds between scans; an unchanged host sends a heartbeat every
    ``heartbeat_every`` scans so that the server's ``last_report_at`` stays fresh, and every
    ``full_report_every``-th of those is a full report instead (a server that lost or mangled the
    inventory gets it back within that bound)."""

    def __init__(
        self,
        client: InventoryApi,
        host_name: str,
        scan: Callable[[], ScanResult],
        specs: Sequence[DeviceSpec],
        facts: Callable[[], tuple[NumaCell, ...]],
        interval: float,
        *,
        heartbeat_every: int = 10,
        full_report_every: int = 30,
        max_backoff: float = 60.0,
        conflict_retries: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        if not interval > 0:
            raise InvalidInput(f"interval ({interval}) must be a positive number of seconds")
        if heartbeat_every < 1:
            raise InvalidInput(f"heartbeat_every ({heartbeat_every}) must be at least 1")
        if full_report_every < 1:
            raise InvalidInput(f"full_report_every ({full_report_every}) must be at least 1")
        self.client = client
        self.host_name = host_name
        self.scan = scan
        self.specs = tuple(specs)
        self.facts = facts
        self.interval = interval
        self.heartbeat_every = heartbeat_every
        self.full_report_every = full_report_every
        self._beats = 0
        self.conflict_retries = conflict_retries
        self.backoff = Backoff(min(interval, 2.0), max(max_backoff, interval), rng or random.Random())  # noqa: S311 - jitter, not a secret
        self.generation: int | None = None
        self._last_sent: JsonObject | None = None
        self._idle_cycles = 0
        self._warnings = WarningLog()
        self._report: HostReport | None = None

    # -- one cycle -----------------------------------------------------------------------------

    def _observe(self) -> HostReport:
        scanned = self.scan()
        classified, spec_warnings = classify(self.specs, scanned.devices)
        cells = self.facts()
        self._warnings.update((*scanned.warnings, *spec_warnings))
        self._report = HostReport(tuple(sorted(cells, key=lambda c: c.node)), classified)
        return self._report

    def latest_report(self) -> HostReport:
        """The host as the last scan saw it (scanning now if there was none): what a reconciler works from."""
        return self._report if self._report is not None else self._observe()

    def _read_generation(self) -> int:
        host = self.client.get_host(self.host_name)
        generation = host.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise EpaError(f"host {self.host_name}: the server's generation ({generation!r}) is not an integer")
        return generation

    def _send(self, report: HostReport) -> tuple[int, InventoryResult]:
        """Send ``report``; on a generation conflict re-read the host and send again (bounded)."""
        attempt = 0
        while True:
            if self.generation is None:
                self.generation = self._read_generation()
            sent_with = self.generation
            try:
                return sent_with, self.client.put_inventory(
                    self.host_name, sent_with, report.numa_cells, report.devices
                )
            except GenerationConflict as e:
                self.generation = None
                attempt += 1
                server = "unknown" if e.current is None else str(e.current)
                if attempt > self.conflict_retries:
                    log.warning(
                        "generation conflict on host %s (we had %d, server has %s); "
                        "giving up after %d retries",
                        self.host_name, sent_with, server, self.conflict_retries,
                    )  # fmt: skip
                    raise
                log.warning(
                    "generation conflict on host %s (we had %d, server has %s); re-reading the host",
                    self.host_name, sent_with, server,
                )  # fmt: skip

    def run_once(self) -> Cycle:
        """Scan once and report if this is the first scan, the inventory changed since the last
        successful report, or a heartbeat is due. Raises what the scan or the server raised."""
        report = self._observe()
        body = inventory_json(report.numa_cells, report.devices)
        if self._last_sent is None:
            reason = "first"
        elif body != self._last_sent:
            reason = "changed"
        elif self._idle_cycles + 1 >= self.heartbeat_every:
            reason = "heartbeat"
        else:
            self._idle_cycles += 1
            return Cycle(devices=len(report.devices))
        if reason == "heartbeat" and isinstance(self.client, HeartbeatApi) and self.generation is not None:
            if self._beats + 1 >= self.full_report_every:
                reason = "full"
            else:
                beat = self._heartbeat(self.client, self.generation)
                if beat is not None:
                    self._beats += 1
                    self._idle_cycles = 0
                    return Cycle(devices=len(report.devices), reason=reason, beat=beat)
        sent_with, result = self._send(report)
        self._beats = 0
        self.generation = result.generation
        self._last_sent = body
        self._idle_cycles = 0
        log.info(
            "reported %d devices (%s): generation %d→%d, changes +%d ~%d -%d, %d unchanged",
            len(report.devices), reason, sent_with, result.generation,
            len(result.added), len(result.updated), len(result.removed), result.unchanged,
        )  # fmt: skip
        if result.vanished_in_use:
            log.warning("devices in use vanished from host %s: %s", self.host_name, ", ".join(result.vanished_in_use))
        return Cycle(devices=len(report.devices), reason=reason, result=result)

    def _heartbeat(self, client: HeartbeatApi, generation: int) -> int | None:
        """The generation the server confirmed, or None when a full report must follow (the server has
        another generation, or does not know the host)."""
        try:
            confirmed = client.heartbeat(self.host_name, generation)
        except GenerationConflict as e:
            log.info("heartbeat of host %s: the server is at generation %s, not %d; sending the full report",
                     self.host_name, e.current, generation)  # fmt: skip
            self.generation = e.current
            return None
        except NotFound:
            return None
        log.debug("heartbeat of host %s at generation %d", self.host_name, confirmed)
        return confirmed

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, reconciler: Reconcile | None = None) -> None:
        """Scan every ``interval`` seconds until ``stop`` is set, running ``reconciler`` (if any) after
        each report. Server outages and failed scans are retried with capped exponential backoff; a failed
        reconciliation is logged (once while it persists) and tried again next interval; a rejected
        token (401/403) ends the loop, raised."""
        log.info(
            "agent started: host %s, server %s, every %gs",
            self.host_name,
            self.client.base_url,
            self.interval,
        )
        failures = 0
        reconcile_errors = WarningLog(log)
        try:
            while not stop.is_set():
                reachable = True
                try:
                    self.run_once()
                    failures = 0
                    delay = self.interval
                except (Unauthorized, Forbidden):
                    raise
                except ServiceUnavailable as e:
                    reachable = False
                    delay = self.backoff.delay(failures)
                    failures += 1
                    log.warning("server unreachable (%s); retry in %.1fs", e, delay)
                except EpaError as e:
                    delay = self.backoff.delay(failures)
                    failures += 1
                    log.error("report failed (%s: %s); retry in %.1fs", e.code, e, delay)
                if reconciler is not None and reachable and not stop.is_set():
                    reconcile_errors.update(self.reconcile(reconciler))
                if stop.wait(delay):
                    break
        finally:
            log.info("agent stopped: host %s", self.host_name)

    @staticmethod
    def reconcile(reconciler: Reconcile) -> list[str]:
        """One reconciliation pass; the failure that stopped it, as a message (none when it ran).
        A rejected token is raised."""
        try:
            reconciler.reconcile_once()
        except (Unauthorized, Forbidden):
            raise
        except EpaError as e:
            return [f"reconciliation failed ({e.code}: {e})"]
        return []
