"""A server's life after its claim: what users ask (stop, start, delete) and what the host's agent
reports (building, active, error, the domain it sees, the teardown done)."""

from __future__ import annotations

from epa.crashpoints import crash_point
from epa.domain.server import AGENT_STATUSES, ServerStatus
from epa.errors import Conflict
from epa.inventory.claims import release
from epa.inventory.db import Database
from epa.inventory.records import ServerRecord
from epa.inventory.servers import get_server, set_server_status

_V = ServerStatus


def report(
    db: Database,
    server_id: str,
    status: ServerStatus | None,
    reason: str | None = None,
    domain_uuid: str | None = None,
    domain_state: str | None = None,
    domain_xml: str | None = None,
) -> ServerRecord:
    """What the agent did or saw. ``error`` also gives the server's devices back (it failed on its
    host, and the agent has left nothing there); the server keeps its host for the record."""
    if status is not None and status not in AGENT_STATUSES:
        raise Conflict(f"server {server_id}: an agent reports building, active, stopped or error, not {status.value}")
    # A report from a build that raced with a delete: the delete wins. Decided under the server's row
    # lock, in the transaction that writes: a delete landing between a read and the write would
    # otherwise turn into a 409 for the agent (building/active) or be lost (error).
    if status is _V.ERROR:
        set_server_status(
            db, server_id, None, domain_uuid=domain_uuid, domain_state=domain_state, domain_xml=domain_xml
        )
        return release(db, server_id, error=reason or "failed on its host")
    return set_server_status(
        db,
        server_id,
        status,
        reason,
        domain_uuid,
        domain_state=domain_state,
        domain_xml=domain_xml,
        delete_wins=True,
    )


def stop(db: Database, server_id: str) -> ServerRecord:
    return set_server_status(db, server_id, _V.STOPPED)


def start(db: Database, server_id: str) -> ServerRecord:
    return set_server_status(db, server_id, _V.ACTIVE)


def request_delete(db: Database, server_id: str, force: bool = False) -> ServerRecord:
    """A server on a host goes to ``deleting``: its agent tears the domain down and then reports the
    release. One that never got a host (or ``force``: the host is gone for good) is released at once."""
    current = get_server(db, server_id)
    if current.status is _V.DELETED:
        return current
    if current.host is None or force:
        return release(db, server_id)
    deleting = set_server_status(db, server_id, _V.DELETING, "deleting: waiting for the host's agent")
    crash_point("delete.after_commit")
    return deleting


def teardown_done(db: Database, server_id: str) -> ServerRecord:
    """The agent destroyed and undefined the domain and reset the VFs: the devices go back."""
    current = get_server(db, server_id)
    if current.status not in (_V.DELETING, _V.DELETED):
        raise Conflict(f"server {server_id} is {current.status.value}, not deleting: nothing to release")
    return release(db, server_id)
