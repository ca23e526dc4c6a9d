"""Inventory reports: the diff against the stored devices, the generation guard, and its cost."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from epa.domain.device import DevType
from epa.domain.device_spec import ClassifiedDevice
from epa.domain.host import HostReport, NumaCell
from epa.domain.status import DeviceStatus, InvalidStatusTransition
from epa.errors import GenerationConflict, NotFound
from epa.inventory import (
    Database,
    apply_report,
    create_host,
    get_device,
    get_host,
    list_devices,
    set_device_status,
)

CountQueries = Callable[[], AbstractContextManager[list[str]]]
S = DeviceStatus
QAT_VF = "0000:3d:01.0"
X710_PF = "0000:18:00.0"
X710_VF = "0000:18:02.0"


def addresses(report: HostReport) -> list[str]:
    return sorted(str(c.device.address) for c in report.devices)


def without(report: HostReport, *gone: str) -> HostReport:
    return HostReport(report.numa_cells, tuple(c for c in report.devices if str(c.device.address) not in gone))


def with_driver(report: HostReport, address: str, driver: str) -> HostReport:
    def change(c: ClassifiedDevice) -> ClassifiedDevice:
        if str(c.device.address) != address:
            return c
        return dataclasses.replace(c, device=dataclasses.replace(c.device, driver=driver))

    return HostReport(report.numa_cells, tuple(change(c) for c in report.devices))


def statuses(db: Database, host: str = "nfv-1") -> dict[str, S]:
    return {str(r.device.address): r.status for r in list_devices(db, host=host, limit=10_000)[0]}


@pytest.fixture
def host(db: Database) -> str:
    create_host(db, "nfv-1")
    return "nfv-1"


def test_first_report_adds_everything(db: Database, host: str, nfv_report: HostReport) -> None:
    outcome = apply_report(db, host, 0, nfv_report)
    assert outcome.generation == 1
    assert list(outcome.added) == addresses(nfv_report)
    assert (outcome.updated, outcome.removed, outcome.vanished_in_use, outcome.unchanged) == ((), (), (), 0)
    assert set(statuses(db).values()) == {S.AVAILABLE}
    stored = {str(r.device.address): r for r in list_devices(db, host=host)[0]}
    for c in nfv_report.devices:
        record = stored[str(c.device.address)]
        assert record.device == c.device
        assert (record.assignable, dict(record.tags)) == (c.assignable, c.tags)
    assert stored["0000:b1:00.0"].assignable is False  # NVMe: stored, but no spec matches
    assert stored[X710_VF].tags == {"physical_network": "physnet1"}
    assert outcome.generation == 1


def test_unchanged_report_bumps_the_generation_and_writes_no_device(
    db: Database, host: str, nfv_report: HostReport, count_queries: CountQueries
) -> None:
    apply_report(db, host, 0, nfv_report)
    with count_queries() as statements:
        outcome = apply_report(db, host, 1, nfv_report)
    assert outcome.generation == 2 and get_host(db, host).generation == 2
    assert (outcome.added, outcome.updated, outcome.removed) == ((), (), ())
    assert outcome.unchanged == len(nfv_report.devices)
    assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT INTO DEVICES", "UPDATE DEVICES"))]


def test_changed_device_is_updated_and_keeps_its_status_and_owner(
    db: Database, host: str, nfv_report: HostReport
) -> None:
    apply_report(db, host, 0, nfv_report)
    set_device_status(db, host, QAT_VF, S.CLAIMED, owner="server-1")
    outcome = apply_report(db, host, 1, with_driver(nfv_report, QAT_VF, "vfio-pci"))
    assert outcome.updated == (QAT_VF,)
    assert outcome.unchanged == len(nfv_report.devices) - 1
    record = get_device(db, host, QAT_VF)
    assert (record.device.driver, record.status, record.owner) == ("vfio-pci", S.CLAIMED, "server-1")


def test_vanished_free_device_is_removed_and_comes_back(db: Database, host: str, nfv_report: HostReport) -> None:
    apply_report(db, host, 0, nfv_report)
    outcome = apply_report(db, host, 1, without(nfv_report, "0000:af:00.0"))
    assert outcome.removed == ("0000:af:00.0",)
    assert get_device(db, host, "0000:af:00.0").status is S.REMOVED
    assert get_host(db, host).device_counts["removed"] == 1
    # Still gone: nothing new to say about it.
    assert apply_report(db, host, 2, without(nfv_report, "0000:af:00.0")).removed == ()
    outcome = apply_report(db, host, 3, nfv_report)
    assert outcome.added == ("0000:af:00.0",)
    assert get_device(db, host, "0000:af:00.0").status is S.AVAILABLE


def test_vanished_device_in_use_is_kept_and_flagged(db: Database, host: str, nfv_report: HostReport) -> None:
    apply_report(db, host, 0, nfv_report)
    set_device_status(db, host, QAT_VF, S.CLAIMED, owner="server-1")
    set_device_status(db, host, QAT_VF, S.ALLOCATED)
    outcome = apply_report(db, host, 1, without(nfv_report, QAT_VF))
    assert (outcome.vanished_in_use, outcome.removed) == ((QAT_VF,), ())
    record = get_device(db, host, QAT_VF)
    assert (record.status, record.owner, record.vanished) == (S.ALLOCATED, "server-1", True)
    # Reported again on every report while it stays gone.
    assert apply_report(db, host, 2, without(nfv_report, QAT_VF)).vanished_in_use == (QAT_VF,)
    # Back on the host: the flag clears, the allocation stays.
    outcome = apply_report(db, host, 3, nfv_report)
    assert outcome.updated == (QAT_VF,)
    record = get_device(db, host, QAT_VF)
    assert (record.status, record.owner, record.vanished) == (S.ALLOCATED, "server-1", False)


def test_releasing_a_vanished_device_removes_it(db: Database, host: str, nfv_report: HostReport) -> None:
    apply_report(db, host, 0, nfv_report)
    set_device_status(db, host, QAT_VF, S.CLAIMED, owner="s")
    apply_report(db, host, 1, without(nfv_report, QAT_VF))
    record = set_device_status(db, host, QAT_VF, S.AVAILABLE)
    assert (record.status, record.owner, record.vanished) == (S.REMOVED, None, False)
    assert get_device(db, host, QAT_VF) == record
    # Only a report brings it back.
    with pytest.raises(InvalidStatusTransition, match="removed"):
        set_device_status(db, host, QAT_VF, S.AVAILABLE)


def test_new_vf_of_a_claimed_pf_arrives_unavailable(db: Database, host: str, nfv_report: HostReport) -> None:
    apply_report(db, host, 0, without(nfv_report, X710_VF))
    set_device_status(db, host, X710_PF, S.CLAIMED, owner="s")
    outcome = apply_report(db, host, 1, nfv_report)
    assert outcome.added == (X710_VF,)
    assert get_device(db, host, X710_VF).status is S.UNAVAILABLE


def test_stale_generation_is_a_conflict_naming_both(db: Database, host: str, nfv_report: HostReport) -> None:
    apply_report(db, host, 0, nfv_report)
    with pytest.raises(GenerationConflict) as e:
        apply_report(db, host, 0, without(nfv_report, QAT_VF))
    assert e.value.current == 1
    assert "nfv-1" in str(e.value) and "generation 0" in str(e.value) and "generation 1" in str(e.value)
    # Nothing of the refused report was written.
    assert get_device(db, host, QAT_VF).status is S.AVAILABLE
    assert get_host(db, host).generation == 1


def test_report_for_an_unknown_host(db: Database, nfv_report: HostReport) -> None:
    with pytest.raises(NotFound, match="'ghost'"):
        apply_report(db, "ghost", 0, nfv_report)


def test_numa_cells_are_replaced(db: Database, host: str, nfv_report: HostReport) -> None:
    apply_report(db, host, 0, nfv_report)
    cells = (NumaCell(0, (0, 1, 2), 1024, socket=0),)
    apply_report(db, host, 1, HostReport(cells, nfv_report.devices))
    assert get_host(db, host).numa_cells == cells


def test_a_thousand_functions_take_few_queries(
    db: Database, scale_report: HostReport, count_queries: CountQueries
) -> None:
    report = scale_report
    assert len(report.devices) >= 1000
    create_host(db, "scale-1")
    pf = next(str(c.device.address) for c in report.devices if c.device.dev_type is DevType.PF)
    vfs = [str(c.device.address) for c in report.devices if str(c.device.parent_addr) == pf]
    with count_queries() as first:
        apply_report(db, "scale-1", 0, report)
    set_device_status(db, "scale-1", vfs[1], S.CLAIMED, owner="s")
    # Every VF changes driver, one VF vanishes: ~1,000 updated rows.
    rebound = HostReport(
        report.numa_cells,
        tuple(
            dataclasses.replace(c, device=dataclasses.replace(c.device, driver="vfio-pci"))
            if c.device.dev_type is DevType.VF and c.device.driver != "vfio-pci"
            else c
            for c in report.devices
        ),
    )
    with count_queries() as again:
        outcome = apply_report(db, "scale-1", 1, without(rebound, vfs[0]))
    assert outcome.removed == (vfs[0],)
    assert len(outcome.updated) >= 400
    assert get_device(db, "scale-1", pf).status is S.UNAVAILABLE
    # Statements, not rows: the host UPDATE, the cells, one SELECT, one bulk INSERT or UPDATE.
    assert len(first) <= 8, first
    assert len(again) <= 8, again
