"""PCIe topology groups: a flavor's ``pci_group`` extra spec, which says how the devices of a server's
requests must sit relative to each other in the host's PCIe tree, and the keys a device is compared by.

Syntax: relations separated by ``;``, each ``relation(member, member, ...)``. A member is an alias the
flavor's ``pci_passthrough:alias`` requests (all of its devices) or ``port:N``, the server's N-th port
(0-based, in the order of the create). Relations:

- ``same_switch``: every device under one PCIe switch (the same upstream switch port);
- ``same_root``: every device under one root complex (``pci0000:3a``);
- ``same_numa``: every device on one host NUMA node;
- ``same_pf``: every device a VF of one PF (or that PF itself);
- ``distinct_pf``: no two devices on one PF (two ports of a bonded pair, say).

Example: ``"same_switch(gpu, port:0); distinct_pf(port:0, port:1)"``."""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from epa.domain.address import PciAddress
from epa.domain.names import shown
from epa.errors import InvalidInput

PCI_GROUP_KEY = "pci_group"
MAX_GROUPS = 8
MAX_MEMBERS = 8
MAX_PORT = 63
MAX_TEXT = 1024
_GROUP = re.compile(r"\s*([a-z_]+)\s*\(([^()]*)\)\s*")
_PORT = re.compile(r"port:(\d{1,3})")


class InvalidPciGroup(InvalidInput):
    code = "invalid_pci_group"


class Relation(enum.StrEnum):
    SAME_SWITCH = "same_switch"
    SAME_ROOT = "same_root"
    SAME_NUMA = "same_numa"
    SAME_PF = "same_pf"
    DISTINCT_PF = "distinct_pf"

    @property
    def noun(self) -> str:
        """What one value of the relation's key is, in words."""
        return {
            Relation.SAME_SWITCH: "PCIe switch",
            Relation.SAME_ROOT: "root complex",
            Relation.SAME_NUMA: "NUMA node",
            Relation.SAME_PF: "PF",
            Relation.DISTINCT_PF: "PF",
        }[self]


@dataclass(frozen=True, slots=True)
class PciGroup:
    """One relation over members: alias names and ``port:N``."""

    relation: Relation
    members: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.relation.value}({', '.join(self.members)})"

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(int(m.split(":", 1)[1]) for m in self.members if _PORT.fullmatch(m))


def format_pci_groups(groups: Sequence[PciGroup]) -> str:
    """The normalised text: ``"same_switch(gpu, port:0); distinct_pf(port:0, port:1)"``."""
    return "; ".join(g.text for g in groups)


def parse_pci_groups(text: object, aliases: Collection[str]) -> tuple[PciGroup, ...]:
    """Parse a ``pci_group`` value; every alias member must be one of ``aliases`` (the flavor's)."""

    def bad(why: str) -> InvalidPciGroup:
        return InvalidPciGroup(f"{PCI_GROUP_KEY} ({shown(text)}): {why}")

    if not isinstance(text, str):
        raise bad("must be a string")
    if len(text) > MAX_TEXT:
        raise bad(f"longer than {MAX_TEXT} characters")
    if not text.strip():
        return ()
    groups: list[PciGroup] = []
    for part in text.split(";"):
        m = _GROUP.fullmatch(part)
        if m is None:
            raise bad(f"{shown(part.strip())} is not relation(member, member, ...)")
        name, inside = m.groups()
        if name not in {r.value for r in Relation}:
            raise bad(f"unknown relation {shown(name)} (known: {', '.join(r.value for r in Relation)})")
        members = tuple(x.strip() for x in inside.split(","))
        if not members or "" in members:
            raise bad(f"{name}: an empty member")
        if len(members) > MAX_MEMBERS:
            raise bad(f"{name}: more than {MAX_MEMBERS} members")
        if len(set(members)) != len(members):
            raise bad(f"{name}: a member named twice")
        for member in members:
            port = _PORT.fullmatch(member)
            if port is not None:
                if int(port.group(1)) > MAX_PORT:
                    raise bad(f"{name}: {shown(member)} (ports are numbered 0..{MAX_PORT})")
            elif member not in aliases:
                known = ", ".join(sorted(aliases)) or "none"
                raise bad(
                    f"{name}: member {shown(member)} is neither port:N nor an alias the flavor requests ({known})"
                )
        groups.append(PciGroup(Relation(name), members))
    if len(groups) > MAX_GROUPS:
        raise bad(f"more than {MAX_GROUPS} relations")
    return tuple(groups)


def switch_of(pcie_path: Sequence[PciAddress]) -> PciAddress | None:
    """The upstream port of the PCIe switch nearest a function, from its ``pcie_path`` (root port first,
    the function's own parent bridge last): behind a switch the path ends root port, ..., switch upstream
    port, switch downstream port. A function right under a root port (a path of one or two bridges) is
    behind no switch."""
    return pcie_path[-2] if len(pcie_path) >= 3 else None
