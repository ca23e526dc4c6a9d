"""Property: whatever claims and releases are attempted on one PF family, the stored statuses never
have the PF and one of its VFs both in use, and ``unavailable`` is exactly what the rule derives."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epa.domain.address import PciAddress
from epa.domain.device import DevType, PciDevice
from epa.domain.device_spec import ClassifiedDevice
from epa.domain.host import HostReport
from epa.domain.status import DeviceStatus
from epa.errors import EpaError
from epa.inventory import Database, apply_report, create_host, list_devices, set_device_status

S = DeviceStatus
PF = PciAddress.parse("0000:3b:00.0")
VFS = [PciAddress(0, 0x3B, 2, f) for f in range(4)]
ALL = [PF, *VFS]


def family_report() -> HostReport:
    pf = PciDevice(PF, "8086", "1572", "020000", DevType.PF, sriov_totalvfs=4, sriov_numvfs=4, vf_addrs=tuple(VFS))
    vfs = [PciDevice(a, "8086", "154c", "020000", DevType.VF, parent_addr=PF) for a in VFS]
    return HostReport((), tuple(ClassifiedDevice(d, True) for d in (pf, *vfs)))


_hosts = itertools.count()


@pytest.fixture(scope="module")
def prop_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    # One SQLite database for every example (a fresh host each): much cheaper than a file each.
    db = Database.connect(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'epa.db'}")
    db.migrate()
    yield db
    db.dispose()


steps = st.lists(
    st.tuples(
        st.sampled_from(ALL),
        st.sampled_from([S.AVAILABLE, S.CLAIMED, S.ALLOCATED]),
        st.sampled_from(["server-a", "server-b", None]),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_pf_and_vf_never_in_use_together(
    prop_db: Database, plan: list[tuple[PciAddress, DeviceStatus, str | None]]
) -> None:
    db = prop_db
    host = f"h{next(_hosts)}"
    create_host(db, host)
    apply_report(db, host, 0, family_report())
    for address, status, owner in plan:
        # Refused moves are fine (InvalidStatusTransition, Conflict, InvalidInput): what matters is
        # the state they leave.
        with contextlib.suppress(EpaError):
            set_device_status(db, host, address, status, owner=owner)
        stored = {r.device.address: r.status for r in list_devices(db, host=host)[0]}
        pf_used = stored[PF].in_use
        vfs_used = any(stored[v].in_use for v in VFS)
        assert not (pf_used and vfs_used), stored
        assert (stored[PF] is S.UNAVAILABLE) == vfs_used
        assert all((stored[v] is S.UNAVAILABLE) == pf_used for v in VFS)
        assert all((r.owner is not None) == r.status.in_use for r in list_devices(db, host=host)[0])
