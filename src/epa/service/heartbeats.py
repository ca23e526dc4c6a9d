"""Group commit for heartbeats: requests wait on an in-process buffer that one thread writes out every
``flush_seconds`` in a single transaction, however many hosts beat meanwhile.

An agent's heartbeat is answered only once its batch has committed, so an answered heartbeat is
durable: the agent timeout is measured from ``last_report_at`` in the database, exactly as for a full
report. What batching costs is latency (up to ``flush_seconds`` more per heartbeat); what it buys is
one transaction and one round of WAL flushing per batch instead of per host."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from epa.inventory import Database
from epa.inventory.liveness import Beat, BeatOutcome, record_beats

log = logging.getLogger("epa.heartbeats")
# A batch larger than this is split (one IN list and one executemany each).
MAX_BATCH = 2000
# The writer thread ends after this long without heartbeats and starts again with the next one.
IDLE_EXIT_SECONDS = 2.0


@dataclass(slots=True)
class _Waiting:
    beat: Beat
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[BeatOutcome]


@dataclass(slots=True)
class HeartbeatStats:
    """What the writer has done (for metrics and the fleet benchmark)."""

    beats: int = 0
    batches: int = 0


class HeartbeatWriter:
    def __init__(
        self,
        db: Database,
        flush_seconds: float,
        revive_after: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.flush_seconds = flush_seconds
        self.revive_after = revive_after
        self.clock = clock
        self.stats = HeartbeatStats()
        self._pending: list[_Waiting] = []
        self._lock = threading.Lock()
        # Set while heartbeats wait to be written.
        self._work = threading.Event()
        self._thread: threading.Thread | None = None

    async def beat(self, host: str, generation: int, token: str) -> BeatOutcome:
        """Record that ``host``'s agent, holding ``generation``, is alive, if the token (its digest) may say
        so; returns once committed."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(Beat(host, generation, self.clock(), token), loop, loop.create_future())
        with self._lock:
            self._pending.append(waiting)
            if len(self._pending) == 1:
                # The first of a batch wakes the writer (or starts it); the others only join the list.
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="epa-heartbeats", daemon=True)
                    self._thread.start()
                self._work.set()
        return await waiting.future

    def _run(self) -> None:
        while True:
            if not self._work.wait(IDLE_EXIT_SECONDS):
                with self._lock:
                    if not self._pending:
                        self._thread = None
                        return
            # Let the batch fill: heartbeats arriving meanwhile share this transaction.
            threading.Event().wait(self.flush_seconds)
            with self._lock:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                if not self._pending:
                    self._work.clear()
            self._write(batch)

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            outcomes: list[BeatOutcome] | BaseException = record_beats(
                self.db, [w.beat for w in batch], self.revive_after
            )
        except Exception as e:  # every waiter gets the error (translated to ServiceUnavailable etc.)
            log.warning("writing %d heartbeats failed: %s", len(batch), e)
            outcomes = e
        else:
            self.stats.beats += len(batch)
            self.stats.batches += 1
        # One wake-up per event loop for the whole batch, not one per heartbeat (each is a write to the loop's
        # self-pipe and a turn of the loop).
        by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
        for i, w in enumerate(batch):
            result = outcomes if isinstance(outcomes, BaseException) else outcomes[i]
            by_loop.setdefault(w.loop, []).append((w.future, result))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # its loop was closed (the app shut down): nobody waits for these answers
                log.debug("%d heartbeats answered after their event loop closed", len(settled))


# A heartbeat's future and what it gets: the outcome, or the error that writing its batch met.
_Settled = tuple[asyncio.Future[BeatOutcome], BeatOutcome | BaseException]


def _settle(settled: list[_Settled]) -> None:
    for future, result in settled:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
