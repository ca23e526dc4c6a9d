"""Story: an agent whose inventory did not change sends a heartbeat; the server records its liveness
without touching the host's generation or putting it on the change feed, and says when the agent's
generation is not the host's (the agent then sends its full report)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from epa.inventory import Database
from epa.inventory.changes import feed_cursor, read_changes
from epa.inventory.schema import HostRow
from support.api_story import Api
from support.reports import report_body


def change_seq(db: Database, host: str) -> int:
    """The host's place on the change feed (a read from a cursor may name a host again on PostgreSQL,
    whose cursor is a transaction horizon that other databases' transactions hold back)."""
    with db.transaction(readonly=True) as session:
        return session.execute(select(HostRow.change_seq).where(HostRow.name == host)).scalar_one()


def test_heartbeat_records_liveness_only(api: Api, db: Database, nfv_sysfs: Path) -> None:
    token = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, generation=0))
    before = api.call("GET", "/v1/hosts/nfv-1")
    seq = change_seq(db, "nfv-1")

    answer = api.call("POST", "/v1/hosts/nfv-1/heartbeat", token=token, json={"generation": 1})
    assert answer == {"host": "nfv-1", "generation": 1}

    after = api.call("GET", "/v1/hosts/nfv-1")
    assert after["generation"] == before["generation"] == 1
    assert after["last_report_at"] > before["last_report_at"]
    assert after["device_counts"] == before["device_counts"]
    assert change_seq(db, "nfv-1") == seq


def test_a_stale_generation_is_a_conflict_naming_the_current_one(api: Api, nfv_sysfs: Path) -> None:
    token = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, generation=0))
    before = api.call("GET", "/v1/hosts/nfv-1")
    body = api.call("POST", "/v1/hosts/nfv-1/heartbeat", token=token, json={"generation": 0}, expect=409)
    assert body["error"]["code"] == "generation_conflict"
    assert body["error"]["current_generation"] == 1
    assert "send a full inventory report" in body["error"]["message"]
    # A refused heartbeat writes nothing (the full report that follows records the liveness).
    assert api.call("GET", "/v1/hosts/nfv-1") == before


def test_unknown_host_and_bad_bodies(api: Api) -> None:
    message = api.error("POST", "/v1/hosts/ghost/heartbeat", json={"generation": 0}, expect=404, code="not_found")
    assert "ghost" in message
    api.call("POST", "/v1/hosts", json={"name": "h"}, expect=201)
    for body, field in (({"generation": -1}, "generation"), ({}, "generation"), ({"generation": 0, "x": 1}, "x")):
        message = api.error("POST", "/v1/hosts/h/heartbeat", json=body, expect=400, code="invalid_input")
        assert field in message, message


def test_a_host_back_from_silence_goes_on_the_change_feed(api: Api, db: Database, nfv_sysfs: Path) -> None:
    token = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, generation=0))
    # Silent for an hour (far past half the agent timeout): views have written the host off.
    with db.transaction() as session:
        session.execute(update(HostRow).values(last_report_at=datetime.now(UTC) - timedelta(hours=1)))
    cursor, seq = feed_cursor(db), change_seq(db, "nfv-1")
    api.call("POST", "/v1/hosts/nfv-1/heartbeat", token=token, json={"generation": 1})
    assert "nfv-1" in read_changes(db, cursor).names
    revived = change_seq(db, "nfv-1")
    assert revived > seq
    # The next heartbeat, soon after, is liveness only again.
    api.call("POST", "/v1/hosts/nfv-1/heartbeat", token=token, json={"generation": 1})
    assert change_seq(db, "nfv-1") == revived
