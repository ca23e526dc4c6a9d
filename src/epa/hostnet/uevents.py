"""PCI uevents from the kernel (``NETLINK_KOBJECT_UEVENT``, read through pyroute2): what tells the agent
at once that a PCI function appeared, went or changed driver (``sriov_numvfs`` changed, a function
removed), so that it rescans within seconds instead of at its next periodic scan."""

from __future__ import annotations

import select
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyroute2 import UeventSocket

from epa.errors import EpaError


class UeventsUnavailable(EpaError):
    """The kernel's uevent socket cannot be opened (no permission, no netlink): the periodic scan remains."""

    code = "uevents_unavailable"


@dataclass(frozen=True, slots=True)
class PciUevent:
    """One uevent of the PCI bus: ``action`` (add, remove, bind, unbind, change) on the function at ``address``."""

    action: str
    address: str | None


class PciUevents:
    """A uevent socket bound to the kernel's broadcast group; a context manager that closes it."""

    def __init__(self) -> None:
        try:
            sock: Any = UeventSocket()
            sock.bind()
        except OSError as e:
            raise UeventsUnavailable(f"cannot listen to kernel uevents: {e.strerror or e}") from e
        self._sock: Any = sock

    def __enter__(self) -> PciUevents:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def read(self, timeout: float) -> list[PciUevent]:
        """The PCI uevents that arrive within ``timeout`` seconds (all those queued, once one has); [] if none."""
        if self._sock is None:
            raise UeventsUnavailable("the uevent socket is closed")
        readable, _, _ = select.select([self._sock], [], [], timeout)
        out: list[PciUevent] = []
        while readable:
            try:
                messages = self._sock.get()
            except OSError as e:
                raise UeventsUnavailable(f"cannot read kernel uevents: {e.strerror or e}") from e
            for message in messages:
                if message.get("SUBSYSTEM") == "pci":
                    out.append(PciUevent(str(message.get("ACTION")), message.get("PCI_SLOT_NAME")))
            readable, _, _ = select.select([self._sock], [], [], 0)
        return out
