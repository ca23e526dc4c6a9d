"""Named points where a process can be made to die abruptly, for crash-fault tests.

``EPA_CRASH_AT=<point>[,<point>...]`` in a process's environment makes it send itself SIGKILL when it
reaches one of those points: no ``finally`` block, no exit handler and no buffered write runs, exactly
as if an operator or the kernel's OOM killer had run ``kill -9`` at that instant. The points sit at the
steps where a crash is hardest on the system (a claim written but not committed, committed but not
answered, a domain defined but not started, torn down but not released), and the crash tests kill
each process at each of them and check that everything converges after a restart.

Unset (always in production) it costs one set lookup per point. ``epa serve`` and ``epa agent`` log a
warning naming the armed points at start, so a stray variable cannot go unnoticed."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

from epa.errors import InvalidInput

ENV = "EPA_CRASH_AT"

# Every point, with where it is: a test checks that each is used in the code and that the crash tests
# exercise each one.
POINTS: dict[str, str] = {
    "claim.before_commit": "epa serve: a create's claim (server, cells, claims, devices) is written, not committed",
    "claim.after_commit": "epa serve: a create's claim is committed, the client has not had the answer",
    "delete.after_commit": "epa serve: a delete has marked the server deleting, the client has not had the answer",
    "release.before_commit": "epa serve: a release (the agent's teardown done) is written but not committed",
    "release.after_commit": "epa serve: a release is committed, the agent has not had the answer",
    "agent.build.before_define": "epa agent: the server is reported building and its VFs are set, no domain yet",
    "agent.build.after_define": "epa agent: the domain is defined but not started",
    "agent.build.after_start": "epa agent: the domain runs, the server is not yet reported active",
    "agent.teardown.after_destroy": "epa agent: a deleted server's domain is stopped but still defined",
    "agent.teardown.before_released": "epa agent: the domain is gone and the VFs reset, the release not yet posted",
}


def _named(environ: Mapping[str, str]) -> frozenset[str]:
    return frozenset(n.strip() for n in environ.get(ENV, "").split(",") if n.strip())


def armed(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The points named in ``EPA_CRASH_AT``; an unknown name is an error (a typo would test nothing).
    ``epa serve`` and ``epa agent`` call this before they start."""
    names = _named(os.environ if environ is None else environ)
    unknown = sorted(names - POINTS.keys())
    if unknown:
        raise InvalidInput(f"{ENV}: unknown crash point(s) {', '.join(unknown)}; known: {', '.join(sorted(POINTS))}")
    return names


_ARMED = _named(os.environ)


def crash_point(name: str) -> None:
    """Die here, by SIGKILL, if ``name`` is armed."""
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
