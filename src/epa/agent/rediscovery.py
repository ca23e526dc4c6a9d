"""Rediscovery within seconds: kernel PCI uevents wake the agent's loop for an early scan (the periodic
scan stays, as the fallback for a missed or unavailable event). The loop waits on its stop event between
cycles; :class:`ScanWake` is that event, which a uevent also ends early without stopping the loop."""

from __future__ import annotations

import logging
import threading

from epa.errors import EpaError
from epa.hostnet.uevents import PciUevents

log = logging.getLogger("epa.agent")

_POLL_S = 1.0  # how often the listener looks at the stop event between uevents


class ScanWake(threading.Event):
    """A stop event whose ``wait`` also returns (False: not stopped) when :meth:`wake` is called."""

    def __init__(self) -> None:
        super().__init__()
        self._woken = threading.Event()

    def wake(self) -> None:
        self._woken.set()

    def set(self) -> None:
        super().set()
        self._woken.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self.is_set():
            return True
        self._woken.wait(timeout)
        self._woken.clear()
        return self.is_set()


def listen_for_pci_uevents(wake: ScanWake, ready_s: float = 30.0) -> threading.Thread | None:
    """Wake ``wake`` on every burst of PCI uevents until it is set, from a thread that is listening when
    this returns; None (logged) where the kernel's uevent socket cannot be opened, leaving the periodic
    scan alone. The socket is opened in the thread that reads it: pyroute2's sockets keep to the thread
    that made them."""
    opened: list[PciUevents | EpaError] = []
    ready = threading.Event()

    def run() -> None:
        try:
            opened.append(PciUevents())
        except EpaError as e:
            opened.append(e)
        finally:
            ready.set()
        events = opened[0]
        if not isinstance(events, PciUevents):
            return
        with events:
            while not wake.is_set():
                try:
                    seen = events.read(_POLL_S)
                except EpaError as e:
                    log.warning("%s; rediscovery waits for the periodic scan", e)
                    return
                if seen:
                    what = ", ".join(sorted({f"{e.action} {e.address}" for e in seen}))
                    log.info("PCI uevents (%s): scanning now", what)
                    wake.wake()

    thread = threading.Thread(target=run, name="epa-pci-uevents", daemon=True)
    thread.start()
    ready.wait(ready_s)
    if not opened or isinstance(opened[0], EpaError):
        log.warning("%s; rediscovery waits for the periodic scan", opened[0] if opened else "no uevent socket")
        return None
    return thread
