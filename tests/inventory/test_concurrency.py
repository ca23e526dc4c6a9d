"""Several API processes on one database: the database decides, exactly one writer wins.

The report race runs on SQLite too (two handles on one file); the PF/VF claim race needs row locks
and runs on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from epa.domain.host import HostReport
from epa.domain.status import DeviceStatus, InvalidStatusTransition
from epa.errors import GenerationConflict
from epa.inventory import Database, apply_report, create_host, get_device, get_host, set_device_status

PF = "0000:18:00.0"
VF = "0000:18:02.0"


def race(databases: list[Database], calls: list[Callable[[Database], object]]) -> list[object]:
    """Run ``calls[i](databases[i])`` in threads released together; return results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i](databases[i])
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_reports_with_one_generation_exactly_one_wins(db: Database, nfv_report: HostReport) -> None:
    create_host(db, "nfv-1")
    apply_report(db, "nfv-1", 0, nfv_report)
    other = Database.connect(db.engine.url.render_as_string(hide_password=False))
    try:
        for generation in range(1, 6):
            results = race(
                [db, other],
                [lambda d, g=generation: apply_report(d, "nfv-1", g, nfv_report)] * 2,  # type: ignore[misc]
            )
            conflicts = [r for r in results if isinstance(r, GenerationConflict)]
            assert len(conflicts) == 1, results
            assert conflicts[0].current == generation + 1
        assert get_host(db, "nfv-1").generation == 6
    finally:
        other.dispose()


def test_claiming_a_pf_and_its_vf_at_once_only_one_wins(pg_db: Database, pg_url: str, nfv_report: HostReport) -> None:
    create_host(pg_db, "nfv-1")
    apply_report(pg_db, "nfv-1", 0, nfv_report)
    other = Database.connect(pg_url)
    try:
        for _ in range(5):
            results = race(
                [pg_db, other],
                [
                    lambda d: set_device_status(d, "nfv-1", PF, DeviceStatus.CLAIMED, owner="a"),
                    lambda d: set_device_status(d, "nfv-1", VF, DeviceStatus.CLAIMED, owner="b"),
                ],
            )
            failures = [r for r in results if isinstance(r, InvalidStatusTransition)]
            assert len(failures) == 1, results
            pf, vf = get_device(pg_db, "nfv-1", PF), get_device(pg_db, "nfv-1", VF)
            assert not (pf.status.in_use and vf.status.in_use)
            for address in (PF, VF):
                if get_device(pg_db, "nfv-1", address).status.in_use:
                    set_device_status(pg_db, "nfv-1", address, DeviceStatus.AVAILABLE)
    finally:
        other.dispose()
