"""Network ports: a server's attachment to a physical network through an SR-IOV device."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from epa.domain.booleans import boolean_word
from epa.domain.mac import MAC_RULE, is_mac
from epa.domain.names import shown
from epa.errors import InvalidInput

_PHYSNET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class InvalidPort(InvalidInput):
    code = "invalid_port"


class VnicType(enum.StrEnum):
    """Neutron's vnic types that need a PCI device: a VF, a whole PF, or a VF's netdev in macvtap mode."""

    DIRECT = "direct"
    DIRECT_PHYSICAL = "direct-physical"
    MACVTAP = "macvtap"


@dataclass(frozen=True, slots=True)
class Port:
    """``physical_network`` is matched against the devices' ``physical_network`` tag; ``trusted`` asks for
    a VF whose device_spec says ``trusted=true`` (and the VF is then set trusted); ``vlan`` and ``mac``
    configure the VF when the server is provisioned."""

    physical_network: str
    vnic_type: VnicType = VnicType.DIRECT
    trusted: bool = False
    vlan: int | None = None
    mac: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.vnic_type, VnicType):
            if self.vnic_type not in {v.value for v in VnicType}:
                raise InvalidPort(
                    f"port: vnic_type ({shown(self.vnic_type)}) must be one of {', '.join(v.value for v in VnicType)}"
                )
            object.__setattr__(self, "vnic_type", VnicType(self.vnic_type))
        if not _PHYSNET.fullmatch(self.physical_network):
            raise InvalidPort(f"port: physnet ({shown(self.physical_network)}) must be 1-64 of [A-Za-z0-9._-]")
        if self.vlan is not None and not 1 <= self.vlan <= 4094:
            raise InvalidPort(f"port: vlan ({shown(self.vlan)}) must be in 1..4094")
        if self.mac is not None and not is_mac(self.mac):
            raise InvalidPort(f"port: mac ({shown(self.mac)}) must be {MAC_RULE}")
        if self.trusted and self.vnic_type is not VnicType.DIRECT:
            raise InvalidPort(f"port: trusted applies to direct ports only, not {self.vnic_type.value}")

    @classmethod
    def parse(cls, text: str) -> Port:
        """The CLI form: ``physnet=NET,vnic_type=direct|direct-physical|macvtap[,trusted=true][,vlan=N][,mac=M]``."""
        where = f"port {shown(text)}"
        fields: dict[str, str] = {}
        for item in text.split(","):
            key, eq, value = item.strip().partition("=")
            if not eq or not key.strip():
                raise InvalidPort(f"{where}: item {shown(item.strip())} is not KEY=VALUE")
            if key.strip() in fields:
                raise InvalidPort(f"{where}: {key.strip()} is given twice")
            fields[key.strip()] = value.strip()
        known = {"physnet", "physical_network", "vnic_type", "trusted", "vlan", "mac"}
        unknown = sorted(k for k in fields if k not in known)
        if unknown:
            raise InvalidPort(f"{where}: unknown key {shown(unknown[0])} (known: {', '.join(sorted(known))})")
        physnet = fields.get("physnet", fields.get("physical_network"))
        if physnet is None:
            raise InvalidPort(f"{where}: physnet is required")
        trusted, vlan = _boolean(fields.get("trusted", "false"), where), _vlan(fields.get("vlan"), where)
        vnic_type = fields.get("vnic_type", VnicType.DIRECT.value)
        return placed(where, lambda: cls(physnet, vnic_type, trusted, vlan, fields.get("mac", "").lower() or None))  # type: ignore[arg-type]


def placed(where: str, make: Callable[[], Port]) -> Port:
    """``make()``, its error saying ``where`` the port was (``ports[2]``, the CLI text) instead of "port"."""
    try:
        return make()
    except InvalidPort as e:
        raise InvalidPort(f"{where}: {e.message.removeprefix('port: ')}") from e


def _boolean(value: object, where: str) -> bool:
    # A number is not a port's boolean: JSON has true and false for that.
    found = boolean_word(value) if isinstance(value, bool | str) else None
    if found is None:
        raise InvalidPort(f"{where}: trusted ({shown(value)}) must be true or false")
    return found


def _vlan(value: str | None, where: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InvalidPort(f"{where}: vlan ({shown(value)}) must be an integer in 1..4094")
    return int(value)
