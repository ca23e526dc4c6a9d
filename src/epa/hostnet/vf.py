"""Configure an SR-IOV VF through its PF's netlink VF entry: MAC, VLAN, trust and spoof checking.

This is what ``ip link set PF vf N mac M vlan V trust on spoofchk off`` does. On real SR-IOV hardware
the PF driver applies each attribute to the VF; drivers that lack one answer EOPNOTSUPP, which
becomes ``VfUnsupported`` naming the PF, the VF and the attribute. Each attribute is a separate
request so that the error names exactly what the driver refused."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from epa.errors import EpaError, InvalidInput

ZERO_MAC = "00:00:00:00:00:00"


class VfConfigError(EpaError):
    code = "vf_config_failed"


class VfUnsupported(VfConfigError):
    code = "vf_config_unsupported"


@dataclass(frozen=True, slots=True)
class VfConfig:
    """What a ``direct`` port needs of its VF. ``None`` leaves an attribute as it is."""

    pf_ifname: str
    vf_index: int
    mac: str | None = None
    vlan: int | None = None
    trusted: bool | None = None
    spoofchk: bool | None = None

    def __post_init__(self) -> None:
        if not self.pf_ifname or len(self.pf_ifname) > 15:
            raise InvalidInput(f"VF config: PF interface name ({self.pf_ifname!r}) must be 1-15 characters")
        if not 0 <= self.vf_index < 4096:
            raise InvalidInput(f"VF config: vf_index ({self.vf_index!r}) must be in 0..4095")
        if self.vlan is not None and not 0 <= self.vlan <= 4094:
            raise InvalidInput(f"VF config: vlan ({self.vlan!r}) must be in 0..4094 (0: none)")

    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        """The netlink VF entries to send, one per attribute: (attribute name, IFLA_VF_INFO fields)."""
        out: list[tuple[str, dict[str, Any]]] = []
        if self.mac is not None:
            out.append(("mac", {"vf": self.vf_index, "mac": self.mac}))
        if self.vlan is not None:
            out.append(("vlan", {"vf": self.vf_index, "vlan": self.vlan, "qos": 0}))
        if self.trusted is not None:
            out.append(("trust", {"vf": self.vf_index, "trust": 1 if self.trusted else 0}))
        if self.spoofchk is not None:
            out.append(("spoofchk", {"vf": self.vf_index, "spoofchk": 1 if self.spoofchk else 0}))
        return out

    @classmethod
    def reset(cls, pf_ifname: str, vf_index: int) -> VfConfig:
        """What a VF goes back to when its server is gone: no MAC, no VLAN, untrusted, spoof-checked."""
        return cls(pf_ifname, vf_index, mac=ZERO_MAC, vlan=0, trusted=False, spoofchk=True)


class Netlink(Protocol):
    def link_lookup(self, *, ifname: str) -> list[int]: ...
    def link(self, command: str, **kwargs: Any) -> Any: ...
    def close(self) -> None: ...


def apply_vf_config(config: VfConfig, netlink: Callable[[], Netlink] = IPRoute) -> list[str]:
    """Send ``config``; returns the attributes set. Raises ``VfUnsupported`` (EOPNOTSUPP) or
    ``VfConfigError`` naming the PF, the VF and the attribute."""
    where = f"PF {config.pf_ifname} VF {config.vf_index}"
    ipr = netlink()
    try:
        found = ipr.link_lookup(ifname=config.pf_ifname)
        if not found:
            raise VfConfigError(f"{where}: no network interface named {config.pf_ifname!r} on this host")
        done = []
        for attribute, fields in config.requests():
            try:
                ipr.link("set", index=found[0], vf=fields)
            except NetlinkError as e:
                if e.code == errno.EOPNOTSUPP:
                    raise VfUnsupported(
                        f"{where}: the PF driver does not support setting {attribute} "
                        f"(EOPNOTSUPP; is {config.pf_ifname} an SR-IOV PF?)"
                    ) from e
                raise VfConfigError(
                    f"{where}: setting {attribute} failed: {errno.errorcode.get(e.code, e.code)} ({e})"
                ) from e
            done.append(attribute)
        return done
    finally:
        ipr.close()
