"""A server's identity and life: its id, the host it is on, its status and the moves between statuses.

    scheduled -> building -> active <-> stopped
    any status but deleted -> error | deleting;  deleting -> deleted (only a release gets there)

The inventory applies this table under the server's row lock; nothing else decides a move."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NewType

from epa.domain.address import PciAddress
from epa.errors import Conflict, InvalidInput

# The inventory's uuid of a server, and a host's name: typed apart so that neither passes for the other.
ServerId = NewType("ServerId", str)
HostName = NewType("HostName", str)


class ServerStatus(enum.StrEnum):
    """A server's life: ``scheduled`` (host and devices claimed) -> ``building`` -> ``active`` <->
    ``stopped``; ``deleting`` -> ``deleted`` (devices released); ``error`` from anywhere."""

    SCHEDULED = "scheduled"
    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    DELETING = "deleting"
    DELETED = "deleted"
    ERROR = "error"

    @classmethod
    def parse(cls, value: ServerStatus | str) -> ServerStatus:
        try:
            return cls(value)
        except ValueError as e:
            raise InvalidInput(f"server status ({value!r}) must be one of {', '.join(s.value for s in cls)}") from e


_V = ServerStatus
# The forward moves; besides these any status but deleted may go to error or deleting, or stay as it is.
NEXT: Mapping[ServerStatus, frozenset[ServerStatus]] = {
    _V.SCHEDULED: frozenset({_V.BUILDING}),
    _V.BUILDING: frozenset({_V.ACTIVE}),
    _V.ACTIVE: frozenset({_V.STOPPED}),
    _V.STOPPED: frozenset({_V.ACTIVE}),
}
# What a host's agent may report of a server it builds or runs.
AGENT_STATUSES = frozenset({_V.BUILDING, _V.ACTIVE, _V.STOPPED, _V.ERROR})


class InvalidServerTransition(Conflict):
    code = "invalid_server_transition"


def check_server_transition(server_id: str, old: ServerStatus, new: ServerStatus) -> None:
    """Raise ``InvalidServerTransition`` naming the server and both statuses unless old -> new is allowed
    (``deleted`` is reached by releasing the server, never by setting it)."""
    allowed = old is not _V.DELETED and (new in NEXT.get(old, frozenset()) or new in (old, _V.ERROR, _V.DELETING))
    if not allowed or new is _V.DELETED:
        hint = " (releasing the server does that)" if new is _V.DELETED and old is not _V.DELETED else ""
        raise InvalidServerTransition(f"server {server_id}: cannot go from {old.value} to {new.value}{hint}")


@dataclass(frozen=True, slots=True)
class ClaimedDevice:
    """One device a server holds: the device request it answers (``request_index``, the flavor's aliases
    first, then one per port, and that request's label) and, for a port's device, the port's index."""

    address: PciAddress
    request_index: int
    request_label: str
    port: int | None = None
