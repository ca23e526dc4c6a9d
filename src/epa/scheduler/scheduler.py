"""The scheduler: hosts in memory (rebuilt from the database, updated as claims and reports come in),
a request in, ranked placements out - or, for explain, every host's verdict in words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from epa.scheduler.fit import Placement, Rejection, fit
from epa.scheduler.host_state import HostState
from epa.scheduler.index import HostIndex
from epa.scheduler.request import ServerRequest
from epa.scheduler.weigh import WeighConfig, host_score, placement_score


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    weigh: WeighConfig = field(default_factory=WeighConfig)
    # A host whose agent has not reported for this long is not given new servers.
    alive_seconds: float = 300.0
    # How many ranked placements ``select`` returns: the choice and the alternates a claim falls back on.
    alternates: int = 3
    # Which of equivalent free devices to take (see fit._Picker): 0 takes the lowest address; the API
    # gives each process its own salt so that processes sharing a database rarely pick the same VF.
    salt: int = 0


@dataclass(frozen=True, slots=True)
class Ranked:
    placement: Placement
    score: float
    # Whether the host's image cache already holds the server's image (its weigher term).
    holds_image: bool = False


@dataclass(frozen=True, slots=True)
class Selection:
    ranked: tuple[Ranked, ...]
    evaluated: int


@dataclass(frozen=True, slots=True)
class Explanation:
    ranked: tuple[Ranked, ...]
    rejections: tuple[Rejection, ...]

    def summary(self) -> str:
        """One line: how many hosts were rejected for which reason (most common first)."""
        if not self.rejections:
            return "no hosts" if not self.ranked else f"{len(self.ranked)} hosts fit"
        counts = Counter(r.reason for r in self.rejections)
        parts = [f"{n} host{'s' if n > 1 else ''}: {reason}" for reason, n in counts.most_common(5)]
        more = len(counts) - 5
        return "; ".join(parts) + (f"; and {more} other reasons" if more > 0 else "")


class Scheduler:
    def __init__(self, config: SchedulerConfig | None = None) -> None:
        self.config = config or SchedulerConfig()
        self.hosts: dict[str, HostState] = {}
        self.index = HostIndex()

    def load(self, states: Iterable[HostState]) -> None:
        for state in states:
            self.update(state)

    def update(self, state: HostState) -> None:
        self.hosts[state.name] = state
        self.index.upsert(state)

    def remove(self, name: str) -> None:
        self.hosts.pop(name, None)
        self.index.remove(name)

    def lapsing(self, after: float, upto: float) -> list[str]:
        """Hosts whose last report (as this view holds it) lies in (``after``, ``upto``]: those whose
        agent timeout falls in the window the caller is about to re-check against the database."""
        return self.index.reported_between(after, upto)

    def seen(self, name: str, last_report: float | None) -> None:
        """The host's agent was last heard from at ``last_report`` (a heartbeat, read back)."""
        host = self.hosts.get(name)
        if host is not None:
            host.last_report = last_report
            self.index.set_last_report(name, last_report)

    def account(self, placement: Placement) -> None:
        """Take a claimed placement out of the in-memory view."""
        host = self.hosts.get(placement.host)
        if host is not None:
            host.take(placement.all_devices, placement.cpus_by_node, placement.memory_by_node)
            self.index.upsert(host)

    def _fit(self, host: HostState, request: ServerRequest, now: float) -> Placement | Rejection:
        c = self.config
        return fit(host, request, now=now, alive_seconds=c.alive_seconds, spread=c.weigh.spread, salt=c.salt)

    def select(self, request: ServerRequest, now: float, limit: int | None = None) -> Selection:
        """The best ``limit`` placements (default: the configured alternates), best first.

        Hosts are tried in index order (best ``host_score`` first); the scan stops once ``limit``
        placements are found and no later host can outrank them (placement scores never exceed
        host scores), so the result equals a full evaluation."""
        want = limit or self.config.alternates
        found: list[Ranked] = []
        evaluated = 0
        for name, base in self.index.ranked(request, now, self.config.alive_seconds, self.config.weigh):
            if len(found) >= want and (
                base < found[-1].score or (base == found[-1].score and name > found[-1].placement.host)
            ):
                break  # ties come in name order, and a placement never scores above its host
            evaluated += 1
            result = self._fit(self.hosts[name], request, now)
            if isinstance(result, Placement):
                score = placement_score(base, result, request, self.config.weigh)
                found.append(Ranked(result, score, self.hosts[name].holds_image(request)))
                found.sort(key=lambda r: (-r.score, r.placement.host))
                del found[want:]
        return Selection(tuple(found), evaluated)

    def why_not(self, request: ServerRequest, now: float, examine: int = 200) -> str:
        """A one-line reason no host fits, cheap enough to give with every refusal: the index's own tests
        count the hosts they turn away, and only the first ``examine`` hosts that pass them are fitted."""
        found = self.index.prefilter(request, now, self.config.alive_seconds, self.config.weigh)
        reasons = Counter(found.failed)
        rows = found.rows[:examine].tolist()
        for row in rows:
            result = self._fit(self.hosts[self.index.names[row]], request, now)
            if isinstance(result, Rejection):
                reasons[result.reason] += 1
        if not reasons:
            return "no hosts"
        parts = [f"{n} host{'s' if n > 1 else ''}: {reason}" for reason, n in reasons.most_common(5)]
        more = len(reasons) - 5
        unexamined = found.rows.size - len(rows)
        tail = f"; and {more} other reasons" if more > 0 else ""
        if unexamined > 0:
            tail += f"; {unexamined} more hosts passed the capacity checks and were not examined"
        return "; ".join(parts) + tail

    def explain(self, request: ServerRequest, now: float) -> Explanation:
        """Every host's verdict: ranked placements, and a reason for each rejected host."""
        top = self.index.max_assignable()
        ranked: list[Ranked] = []
        rejected: list[Rejection] = []
        for name in sorted(self.hosts):
            host = self.hosts[name]
            result = self._fit(host, request, now)
            if isinstance(result, Rejection):
                rejected.append(result)
                continue
            base = host_score(host, request, self.config.weigh, top)
            score = placement_score(base, result, request, self.config.weigh)
            ranked.append(Ranked(result, score, host.holds_image(request)))
        ranked.sort(key=lambda r: (-r.score, r.placement.host))
        return Explanation(tuple(ranked), tuple(rejected))
