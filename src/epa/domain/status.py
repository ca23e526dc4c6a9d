"""Device status and the PF/VF rules, in one place.

A PF and its VFs are never in use at the same time: while any VF of a PF is ``claimed`` or
``allocated`` the PF is ``unavailable``, and while the PF is in use all its VFs are ``unavailable``.
``unavailable`` is always derived from the family (``settle_family``), never set by hand."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from epa.domain.address import PciAddress
from epa.errors import Conflict


class DeviceStatus(enum.StrEnum):
    AVAILABLE = "available"
    CLAIMED = "claimed"
    ALLOCATED = "allocated"
    UNAVAILABLE = "unavailable"
    REMOVED = "removed"

    @property
    def in_use(self) -> bool:
        return self in (DeviceStatus.CLAIMED, DeviceStatus.ALLOCATED)


class InvalidStatusTransition(Conflict):
    """The move clashes with the device's current state (409, like any conflict with the state)."""

    code = "invalid_status_transition"


_S = DeviceStatus
ALLOWED: Mapping[DeviceStatus, frozenset[DeviceStatus]] = {
    _S.AVAILABLE: frozenset({_S.CLAIMED, _S.UNAVAILABLE, _S.REMOVED}),
    _S.CLAIMED: frozenset({_S.ALLOCATED, _S.AVAILABLE}),
    _S.ALLOCATED: frozenset({_S.AVAILABLE}),
    _S.UNAVAILABLE: frozenset({_S.AVAILABLE, _S.REMOVED}),
    _S.REMOVED: frozenset({_S.AVAILABLE, _S.UNAVAILABLE}),
}


def check_transition(address: PciAddress | str, old: DeviceStatus, new: DeviceStatus) -> None:
    """Raise ``InvalidStatusTransition`` naming the device and both states unless old -> new is legal."""
    if old != new and new not in ALLOWED[old]:
        raise InvalidStatusTransition(f"device {address}: cannot go from {old.value} to {new.value}")


def settle_family(
    pf: DeviceStatus, vfs: Mapping[PciAddress, DeviceStatus]
) -> tuple[DeviceStatus, dict[PciAddress, DeviceStatus]]:
    """Derive ``unavailable`` for a PF and its VFs from which of them are in use.

    In-use and removed devices keep their status; free ones become ``available`` or ``unavailable``.
    Raises if the PF and a VF are both in use (the state the rule exists to prevent)."""
    vf_in_use = [a for a, s in vfs.items() if s.in_use]
    if pf.in_use and vf_in_use:
        raise InvalidStatusTransition(
            f"PF is {pf.value} while VF {min(vf_in_use)} is {vfs[min(vf_in_use)].value}: "
            "a PF and its VFs are never in use together"
        )

    def free(status: DeviceStatus, blocked: bool) -> DeviceStatus:
        if status.in_use or status is DeviceStatus.REMOVED:
            return status
        return DeviceStatus.UNAVAILABLE if blocked else DeviceStatus.AVAILABLE

    return free(pf, bool(vf_in_use)), {a: free(s, pf.in_use) for a, s in vfs.items()}
