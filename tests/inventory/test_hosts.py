"""Hosts: create with a token, list without N+1 queries, read, enable/disable, rotate, delete."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import pytest

from epa.domain.host import HostReport
from epa.domain.status import DeviceStatus
from epa.errors import Conflict, InvalidInput, NotFound, Unauthorized
from epa.inventory import (
    Database,
    apply_report,
    authenticate,
    create_host,
    delete_host,
    get_host,
    list_devices,
    list_hosts,
    rotate_agent_token,
    set_device_status,
    set_host_enabled,
    set_hypervisor,
)

CountQueries = Callable[[], AbstractContextManager[list[str]]]


def test_new_host_has_generation_zero_and_nothing_else(db: Database) -> None:
    host, token = create_host(db, "nfv-1")
    assert (host.name, host.enabled, host.generation, host.last_report_at) == ("nfv-1", True, 0, None)
    assert (host.numa_cells, host.device_total, host.hypervisor, host.images) == ((), 0, None, None)
    assert dict(host.device_counts) == {s.value: 0 for s in DeviceStatus}
    assert get_host(db, "nfv-1") == host
    assert authenticate(db, token).host == "nfv-1"


def test_duplicate_host_is_a_conflict(db: Database) -> None:
    create_host(db, "a")
    with pytest.raises(Conflict, match="'a' already exists"):
        create_host(db, "a")


@pytest.mark.parametrize("name", ["", "-a", ".a", "a b", "a/b", "x" * 64, "ä"])
def test_bad_host_names(db: Database, name: str) -> None:
    with pytest.raises(InvalidInput, match="name"):
        create_host(db, name)
    assert list_hosts(db) == []


def test_unknown_host(db: Database) -> None:
    for call in (
        lambda: get_host(db, "nope"),
        lambda: set_host_enabled(db, "nope", False),
        lambda: rotate_agent_token(db, "nope"),
        lambda: delete_host(db, "nope"),
    ):
        with pytest.raises(NotFound, match="'nope'"):
            call()


def test_host_after_a_report(db: Database, nfv_report: HostReport) -> None:
    create_host(db, "nfv-1")
    when = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    apply_report(db, "nfv-1", 0, nfv_report, now=when)
    host = get_host(db, "nfv-1")
    assert host.generation == 1
    assert host.last_report_at == when
    assert host.numa_cells == nfv_report.numa_cells
    assert host.device_total == len(nfv_report.devices)
    assert host.device_counts["available"] == len(nfv_report.devices)


def test_list_hosts_sorted_with_a_constant_number_of_queries(
    db: Database, nfv_report: HostReport, count_queries: CountQueries
) -> None:
    # Bytewise order on both backends ("B" before "a", "a-1" before "a.1").
    names = ["a.1", "B", "a-1", "c", "Z9"]
    for name in names:
        create_host(db, name)
        apply_report(db, name, 0, nfv_report)
    with count_queries() as statements:
        hosts = list_hosts(db)
    assert [h.name for h in hosts] == sorted(names)
    assert all(h.device_total == len(nfv_report.devices) and len(h.numa_cells) == 2 for h in hosts)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3, statements


def test_enable_disable(db: Database) -> None:
    create_host(db, "h")
    assert set_host_enabled(db, "h", False).enabled is False
    assert get_host(db, "h").enabled is False
    assert set_host_enabled(db, "h", True).enabled is True


def test_rotating_the_agent_token_revokes_the_old_one(db: Database) -> None:
    _, old = create_host(db, "h")
    new = rotate_agent_token(db, "h")
    assert new != old
    assert authenticate(db, new).host == "h"
    with pytest.raises(Unauthorized):
        authenticate(db, old)


def test_delete_host_removes_everything_but_not_while_in_use(db: Database, nfv_report: HostReport) -> None:
    _, token = create_host(db, "h")
    apply_report(db, "h", 0, nfv_report)
    set_device_status(db, "h", "0000:3d:01.0", DeviceStatus.CLAIMED, owner="server-1")
    with pytest.raises(Conflict, match=r"0000:3d:01\.0"):
        delete_host(db, "h")
    set_device_status(db, "h", "0000:3d:01.0", DeviceStatus.AVAILABLE)
    delete_host(db, "h")
    assert list_hosts(db) == []
    assert list_devices(db)[0] == []
    with pytest.raises(Unauthorized):
        authenticate(db, token)
    # The name is free again, with a fresh generation.
    assert create_host(db, "h")[0].generation == 0


def test_an_agents_hypervisor_state_is_kept_on_the_host_and_touches_no_generation(db: Database) -> None:
    create_host(db, "nfv-1")
    down = {"uri": "qemu:///system", "reachable": False, "reason": "waiting for the hypervisor: refused",
            "domain_type": None, "warnings": []}  # fmt: skip
    host = set_hypervisor(db, "nfv-1", down)
    assert host.generation == 0
    shown = dict(get_host(db, "nfv-1").hypervisor or {})
    assert shown.pop("reported_at")
    assert shown == down
    up = dict(down, reachable=True, reason=None, domain_type="qemu")
    assert get_host(db, set_hypervisor(db, "nfv-1", up).name).hypervisor is not None
    assert dict(get_host(db, "nfv-1").hypervisor or {})["reachable"] is True


def test_an_agents_image_cache_is_kept_named_and_on_the_change_feed_only_when_it_changes(db: Database) -> None:
    from epa.inventory.changes import feed_cursor, read_changes
    from epa.inventory.hosts import set_images

    create_host(db, "nfv-1")
    create_host(db, "gpu-1")
    cursor = feed_cursor(db)
    before = change_seqs(db)
    parts = [{"sha256": "b" * 64, "size": 10}, {"sha256": "a" * 64, "size": 20}]
    host = set_images(db, "nfv-1", parts)
    assert host.generation == 0
    images = dict(host.images or {})
    assert images.pop("reported_at")
    # Sorted by checksum; a part no image has (deleted since it was fetched) is named by no image.
    assert images == {
        "parts": [{"sha256": "a" * 64, "size": 20, "images": []}, {"sha256": "b" * 64, "size": 10, "images": []}]
    }
    # Exactly which hosts moved is read from their change_seq: on PostgreSQL the feed's cursor is a server-wide
    # transaction horizon that other databases' open transactions hold back, so the feed may repeat older hosts.
    assert "nfv-1" in read_changes(db, cursor).names
    first = change_seqs(db)
    assert first["nfv-1"] > before["nfv-1"] and first["gpu-1"] == before["gpu-1"]
    # The same set again (a restarted agent says it once more): nothing for the schedulers to reload.
    set_images(db, "nfv-1", list(reversed(parts)))
    assert change_seqs(db) == first
    set_images(db, "nfv-1", parts[:1])
    second = change_seqs(db)
    assert second["nfv-1"] > first["nfv-1"] and second["gpu-1"] == first["gpu-1"]
    with pytest.raises(NotFound, match="'nope'"):
        set_images(db, "nope", [])


def change_seqs(db: Database) -> dict[str, int]:
    """Each host's place on the change feed, read straight from its row."""
    from sqlalchemy import select

    from epa.inventory.schema import HostRow

    with db.transaction(readonly=True) as session:
        return {str(name): int(seq) for name, seq in session.execute(select(HostRow.name, HostRow.change_seq))}
