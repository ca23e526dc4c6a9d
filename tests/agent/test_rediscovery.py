"""Kernel PCI uevents, for real (this suite runs as root): a ``change`` written to a real function's
``uevent`` file reaches the listener through the kernel's netlink socket, and the agent's loop is woken
for a scan at once without being stopped."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from epa.agent.rediscovery import ScanWake, listen_for_pci_uevents
from epa.hostnet.uevents import PciUevents

PCI = Path("/sys/bus/pci/devices")


def a_function() -> str:
    found = sorted(p.name for p in PCI.iterdir()) if PCI.is_dir() else []
    assert found, "this machine shows no PCI function in /sys/bus/pci/devices"
    return found[0]


def poke(address: str) -> None:
    (PCI / address / "uevent").write_text("change")


def test_a_pci_uevent_arrives_with_its_action_and_address() -> None:
    address = a_function()
    with PciUevents() as events:
        poke(address)
        deadline = time.monotonic() + 30
        seen = []
        while not seen and time.monotonic() < deadline:
            seen = [e for e in events.read(1.0) if e.address == address]
    assert seen and seen[0].action == "change"


def test_a_uevent_wakes_the_loop_without_stopping_it_and_stop_still_stops() -> None:
    wake = ScanWake()
    listener = listen_for_pci_uevents(wake)
    assert listener is not None
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(wake.wait(120)))
    waiter.start()
    time.sleep(0.5)  # let the waiter wait; the listener is bound already
    poke(a_function())
    waiter.join(timeout=60)
    assert woke == [False], "the uevent did not wake the loop (or stopped it)"
    wake.set()
    assert wake.wait(120) is True
    listener.join(timeout=30)
    assert not listener.is_alive()


def test_without_a_wake_the_wait_lasts_its_timeout_and_reports_not_stopped() -> None:
    wake = ScanWake()
    started = time.monotonic()
    assert wake.wait(0.2) is False
    assert time.monotonic() - started >= 0.2


@pytest.fixture(autouse=True)
def _root() -> None:
    import os

    assert os.geteuid() == 0, "these tests write to /sys (the suite runs as root, as CI does)"
