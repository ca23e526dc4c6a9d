"""The MAC rule: what EPA accepts as a port's or a VF's MAC address, in one place."""

from __future__ import annotations

import re

MAC_PATTERN = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
MAC_RULE = "six lower-case hex pairs, aa:bb:cc:dd:ee:ff"


def is_mac(value: object) -> bool:
    """Six lower-case hex pairs separated by colons (any address, unicast or not)."""
    return isinstance(value, str) and MAC_PATTERN.fullmatch(value) is not None


def is_multicast(mac: str) -> bool:
    """The group bit of the first octet: libvirt's schema (uniMacAddr) and the kernel refuse such an
    address on a NIC."""
    return bool(int(mac[:2], 16) & 1)
