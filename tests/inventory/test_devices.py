"""Device listing (filters, keyset pagination across hosts) and status changes with the family rule."""

from __future__ import annotations

import pytest

from epa.domain.device import DevType
from epa.domain.host import HostReport
from epa.domain.status import DeviceStatus, InvalidStatusTransition
from epa.errors import Conflict, InvalidInput, NotFound
from epa.inventory import Database, apply_report, create_host, get_device, list_devices, set_device_status

S = DeviceStatus
PF = "0000:18:00.0"
VFS = [f"0000:18:02.{i}" for i in range(8)]
OTHER_PF_VF = "0000:18:0a.0"


@pytest.fixture
def hosts(db: Database, nfv_report: HostReport) -> list[str]:
    names = ["nfv-2", "nfv-1", "nfv-3"]
    for name in names:
        create_host(db, name)
        apply_report(db, name, 0, nfv_report)
    return sorted(names)


def family(db: Database, host: str = "nfv-1") -> tuple[S, list[S]]:
    return get_device(db, host, PF).status, [get_device(db, host, v).status for v in VFS]


def test_claiming_a_vf_blocks_its_pf_and_releasing_frees_it(db: Database, hosts: list[str]) -> None:
    record = set_device_status(db, "nfv-1", VFS[0], S.CLAIMED, owner="server-1")
    assert (record.status, record.owner) == (S.CLAIMED, "server-1")
    assert family(db) == (S.UNAVAILABLE, [S.CLAIMED] + [S.AVAILABLE] * 7)
    set_device_status(db, "nfv-1", VFS[1], S.CLAIMED, owner="server-2")
    set_device_status(db, "nfv-1", VFS[0], S.ALLOCATED)
    assert get_device(db, "nfv-1", VFS[0]).owner == "server-1"
    set_device_status(db, "nfv-1", VFS[0], S.AVAILABLE)
    assert family(db)[0] is S.UNAVAILABLE  # VF 1 still claimed
    set_device_status(db, "nfv-1", VFS[1], S.AVAILABLE)
    assert family(db) == (S.AVAILABLE, [S.AVAILABLE] * 8)
    assert get_device(db, "nfv-1", VFS[0]).owner is None
    # Other families and other hosts never moved.
    assert get_device(db, "nfv-1", OTHER_PF_VF).status is S.AVAILABLE
    assert family(db, "nfv-2") == (S.AVAILABLE, [S.AVAILABLE] * 8)


def test_claiming_a_pf_blocks_its_vfs(db: Database, hosts: list[str]) -> None:
    set_device_status(db, "nfv-1", PF, S.CLAIMED, owner="server-1")
    assert family(db) == (S.CLAIMED, [S.UNAVAILABLE] * 8)
    with pytest.raises(InvalidStatusTransition, match="unavailable to claimed"):
        set_device_status(db, "nfv-1", VFS[3], S.CLAIMED, owner="server-2")
    set_device_status(db, "nfv-1", PF, S.AVAILABLE)
    assert family(db) == (S.AVAILABLE, [S.AVAILABLE] * 8)


def test_status_change_errors(db: Database, hosts: list[str]) -> None:
    with pytest.raises(InvalidStatusTransition, match="derived"):
        set_device_status(db, "nfv-1", PF, S.UNAVAILABLE)
    with pytest.raises(InvalidStatusTransition, match="available to allocated"):
        set_device_status(db, "nfv-1", PF, S.ALLOCATED, owner="s")
    with pytest.raises(Conflict, match="not assignable"):
        set_device_status(db, "nfv-1", "0000:b1:00.0", S.CLAIMED, owner="s")
    with pytest.raises(InvalidInput, match="owner"):
        set_device_status(db, "nfv-1", PF, S.CLAIMED)
    set_device_status(db, "nfv-1", PF, S.CLAIMED, owner="a")
    with pytest.raises(Conflict, match="claimed by a"):
        set_device_status(db, "nfv-1", PF, S.ALLOCATED, owner="b")
    with pytest.raises(NotFound):
        set_device_status(db, "nfv-1", "0000:99:00.0", S.CLAIMED, owner="s")
    with pytest.raises(NotFound):
        set_device_status(db, "nope", PF, S.CLAIMED, owner="s")


def test_get_device(db: Database, hosts: list[str], nfv_report: HostReport) -> None:
    record = get_device(db, "nfv-2", "18:02.0")  # any spelling PciAddress accepts
    assert record.host == "nfv-2"
    assert str(record.device.address) == VFS[0]
    assert str(record.device.parent_addr) == PF
    assert (record.status, record.owner, record.vanished, record.assignable) == (S.AVAILABLE, None, False, True)
    with pytest.raises(NotFound, match=r"0000:99:00\.0"):
        get_device(db, "nfv-2", "0000:99:00.0")
    with pytest.raises(NotFound, match="'ghost'"):
        get_device(db, "ghost", VFS[0])


def test_pagination_walks_every_device_once_in_order(db: Database, hosts: list[str], nfv_report: HostReport) -> None:
    seen: list[tuple[str, str]] = []
    marker = None
    pages = 0
    while True:
        page, marker = list_devices(db, limit=17, marker=marker)
        pages += 1
        seen += [(r.host, str(r.device.address)) for r in page]
        if marker is None:
            break
        assert len(page) == 17
    per_host = sorted(str(c.device.address) for c in nfv_report.devices)
    assert seen == [(h, a) for h in hosts for a in per_host]
    assert pages == -(-len(seen) // 17)


def test_filters(db: Database, hosts: list[str], nfv_report: HostReport) -> None:
    set_device_status(db, "nfv-3", VFS[0], S.CLAIMED, owner="s")
    claimed, marker = list_devices(db, status=S.CLAIMED)
    assert [(r.host, str(r.device.address)) for r in claimed] == [("nfv-3", VFS[0])] and marker is None
    unavailable = list_devices(db, status=S.UNAVAILABLE)[0]
    assert [(r.host, str(r.device.address)) for r in unavailable] == [("nfv-3", PF)]
    pfs = list_devices(db, host="nfv-1", dev_type=DevType.PF)[0]
    want_pfs = sorted(str(c.device.address) for c in nfv_report.devices if c.device.dev_type is DevType.PF)
    assert [str(r.device.address) for r in pfs] == want_pfs
    fixed = list_devices(db, host="nfv-1", assignable=False)[0]
    assert {str(r.device.address) for r in fixed} == {
        str(c.device.address) for c in nfv_report.devices if not c.assignable
    }
    assert all(r.host == "nfv-1" for r in fixed)
    assert list_devices(db, host="ghost") == ([], None)


@pytest.mark.parametrize("limit", [0, 10_001, -1, True])
def test_bad_limit(db: Database, limit: int) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        list_devices(db, limit=limit)


@pytest.mark.parametrize("marker", ["garbage!", "e30", "WzEsMl0"])
def test_bad_marker(db: Database, marker: str) -> None:
    with pytest.raises(InvalidInput, match="marker"):
        list_devices(db, marker=marker)
