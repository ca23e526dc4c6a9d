"""Device status transitions and the PF/VF family rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epa.domain.address import PciAddress
from epa.domain.status import ALLOWED, DeviceStatus, InvalidStatusTransition, check_transition, settle_family

S = DeviceStatus
VF0, VF1 = PciAddress.parse("0000:18:02.0"), PciAddress.parse("0000:18:02.1")


def test_legal_transitions_pass() -> None:
    check_transition("0000:18:02.0", S.AVAILABLE, S.CLAIMED)
    check_transition("0000:18:02.0", S.CLAIMED, S.ALLOCATED)
    check_transition("0000:18:02.0", S.ALLOCATED, S.AVAILABLE)
    check_transition("0000:18:02.0", S.REMOVED, S.AVAILABLE)


@pytest.mark.parametrize(
    ("old", "new"),
    [(S.ALLOCATED, S.CLAIMED), (S.UNAVAILABLE, S.CLAIMED), (S.REMOVED, S.CLAIMED), (S.ALLOCATED, S.REMOVED)],
)
def test_illegal_transition_names_device_and_both_states(old: S, new: S) -> None:
    with pytest.raises(InvalidStatusTransition) as err:
        check_transition(VF0, old, new)
    assert str(err.value) == f"device 0000:18:02.0: cannot go from {old.value} to {new.value}"


def test_every_status_has_rules() -> None:
    assert set(ALLOWED) == set(DeviceStatus)


def test_vf_in_use_makes_pf_unavailable_and_back() -> None:
    pf, vfs = settle_family(S.AVAILABLE, {VF0: S.CLAIMED, VF1: S.AVAILABLE})
    assert (pf, vfs) == (S.UNAVAILABLE, {VF0: S.CLAIMED, VF1: S.AVAILABLE})
    pf, vfs = settle_family(pf, {VF0: S.AVAILABLE, VF1: S.AVAILABLE})
    assert pf is S.AVAILABLE


def test_pf_in_use_makes_vfs_unavailable_but_keeps_removed() -> None:
    pf, vfs = settle_family(S.ALLOCATED, {VF0: S.AVAILABLE, VF1: S.REMOVED})
    assert (pf, vfs) == (S.ALLOCATED, {VF0: S.UNAVAILABLE, VF1: S.REMOVED})


def test_pf_and_vf_both_in_use_is_refused() -> None:
    with pytest.raises(InvalidStatusTransition, match="never in use together"):
        settle_family(S.CLAIMED, {VF0: S.ALLOCATED})


@given(st.sampled_from(list(S)), st.lists(st.sampled_from(list(S)), max_size=6))
def test_settled_family_never_has_pf_and_vf_in_use(pf: S, vf_states: list[S]) -> None:
    vfs = {PciAddress(0, 0x18, 2, i): s for i, s in enumerate(vf_states)}
    try:
        new_pf, new_vfs = settle_family(pf, vfs)
    except InvalidStatusTransition:
        assert pf.in_use and any(s.in_use for s in vf_states)
        return
    assert not (new_pf.in_use and any(s.in_use for s in new_vfs.values()))
    if any(s.in_use for s in new_vfs.values()):
        assert new_pf in (S.UNAVAILABLE, S.REMOVED)
    if new_pf.in_use:
        assert all(s in (S.UNAVAILABLE, S.REMOVED) for s in new_vfs.values())
    # Settling is idempotent.
    assert settle_family(new_pf, new_vfs) == (new_pf, new_vfs)
