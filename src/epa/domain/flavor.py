"""Flavors: what a server asks for (vCPUs, memory, root disk size, NUMA spread and PCI requests by alias).

The PCI requests are Nova's ``pci_passthrough:alias`` text; a flavor's ``numa_policy``, when set,
overrides the NUMA policy of every alias it names (Nova's ``hw:pci_numa_affinity_policy``). ``disk_gb``,
when set, is the size of a disk image server's root disk in GiB (never smaller than its image's virtual
size: the agent refuses that on the server); unset, the root disk is the image's virtual size. ``image``,
when set, is what a server of this flavor boots when its create names no image. ``pci_group`` says how
its devices must sit in the host's PCIe tree (``epa.domain.pci_group``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from epa.domain.alias import Alias, NumaPolicy, PciRequest, parse_pci_requests
from epa.domain.names import NAME_PATTERN, check_name, is_valid_name, shown
from epa.domain.pci_group import PCI_GROUP_KEY, PciGroup, format_pci_groups, parse_pci_groups

__all__ = ["NAME_PATTERN", "Flavor", "InvalidFlavor", "check_name", "format_pci_requests", "is_valid_name"]
from epa.errors import InvalidInput

MAX_VCPUS = 1024
MAX_MEMORY_MB = 16 * 1024 * 1024  # 16 TiB
MAX_NUMA_NODES = 8
MAX_DISK_GB = 64 * 1024  # 64 TiB: the largest root disk a flavor may ask for
PCI_ALIAS_KEY = "pci_passthrough:alias"
_KEYS = ("name", "vcpus", "memory_mb", PCI_ALIAS_KEY, "numa_policy", "numa_nodes", "disk_gb", "image", PCI_GROUP_KEY)


class InvalidFlavor(InvalidInput):
    code = "invalid_flavor"


def _int_in(field: str, value: object, low: int, high: int) -> int:
    # bool is an int in Python but never a count in JSON.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidFlavor(f"flavor: {field} ({shown(value)}) must be an integer in {low}..{high}")
    return value


def format_pci_requests(requests: tuple[PciRequest, ...]) -> str:
    """The normalised ``pci_passthrough:alias`` text: ``"qat:2, t4:1"``."""
    return ", ".join(f"{r.alias}:{r.count}" for r in requests)


@dataclass(frozen=True, slots=True)
class Flavor:
    """A validated flavor. ``pci_alias`` is the normalised text of ``pci_requests``."""

    name: str
    vcpus: int
    memory_mb: int
    pci_alias: str = ""
    pci_requests: tuple[PciRequest, ...] = ()
    numa_policy: NumaPolicy | None = None
    numa_nodes: int = 1
    disk_gb: int | None = None
    image: str | None = None
    pci_group: str = ""
    pci_groups: tuple[PciGroup, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name, "flavor", InvalidFlavor)
        _int_in("vcpus", self.vcpus, 1, MAX_VCPUS)
        _int_in("memory_mb", self.memory_mb, 1, MAX_MEMORY_MB)
        _int_in("numa_nodes", self.numa_nodes, 1, MAX_NUMA_NODES)
        if self.disk_gb is not None:
            _int_in("disk_gb", self.disk_gb, 1, MAX_DISK_GB)
        if self.image is not None:
            check_name(self.image, f"flavor {self.name}: image", InvalidFlavor)
        if self.numa_policy is not None and not isinstance(self.numa_policy, NumaPolicy):
            raise InvalidFlavor(f"flavor: numa_policy ({self.numa_policy!r}) must be a NumaPolicy")
        # The text and the parsed requests are two views of one thing; refuse a flavor where they differ.
        if format_pci_requests(self.pci_requests) != self.pci_alias:
            raise InvalidFlavor(
                f"flavor {self.name}: {PCI_ALIAS_KEY} ({self.pci_alias!r}) does not match its "
                f"pci_requests ({format_pci_requests(self.pci_requests)!r})"
            )
        if format_pci_groups(self.pci_groups) != self.pci_group:
            raise InvalidFlavor(
                f"flavor {self.name}: {PCI_GROUP_KEY} ({self.pci_group!r}) does not match its "
                f"pci_groups ({format_pci_groups(self.pci_groups)!r})"
            )
        requested = {r.alias for r in self.pci_requests}
        for group in self.pci_groups:
            missing = [m for m in group.members if not m.startswith("port:") and m not in requested]
            if missing:
                raise InvalidFlavor(
                    f"flavor {self.name}: {PCI_GROUP_KEY} ({self.pci_group!r}) names alias {missing[0]!r}, "
                    f"which its {PCI_ALIAS_KEY} does not request"
                )

    @classmethod
    def parse(cls, obj: Mapping[str, Any], known_aliases: Mapping[str, Alias]) -> Flavor:
        """Validate a flavor body from the API; every alias it names must be in ``known_aliases``."""
        if not isinstance(obj, Mapping):
            raise InvalidFlavor(f"flavor: expected a JSON object, got {type(obj).__name__}")
        unknown = sorted(str(k) for k in obj if k not in _KEYS)
        if unknown:
            raise InvalidFlavor(f"flavor: unknown field {shown(unknown[0])} (known: {', '.join(_KEYS)})")
        name = check_name(obj.get("name"), "flavor", InvalidFlavor)
        for field in ("vcpus", "memory_mb"):
            if field not in obj:
                raise InvalidFlavor(f"flavor {name}: {field} is required")
        text = obj.get(PCI_ALIAS_KEY)
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise InvalidFlavor(f"flavor {name}: {PCI_ALIAS_KEY} ({shown(text)}) must be a string")
        try:
            requests = parse_pci_requests(text, known_aliases)
        except InvalidInput as e:
            raise InvalidFlavor(f"flavor {name}: {e}") from e
        policy = obj.get("numa_policy")
        if policy is not None and policy not in {p.value for p in NumaPolicy}:
            raise InvalidFlavor(
                f"flavor {name}: numa_policy ({shown(policy)}) must be null or one of "
                f"{', '.join(p.value for p in NumaPolicy)}"
            )
        numa_nodes = obj.get("numa_nodes", 1)
        disk_gb = obj.get("disk_gb")
        image = obj.get("image")
        if image is not None:
            check_name(image, f"flavor {name}: image", InvalidFlavor)
        try:
            raw_group = obj.get(PCI_GROUP_KEY)
            groups = parse_pci_groups("" if raw_group is None else raw_group, {r.alias for r in requests})
        except InvalidInput as e:
            raise InvalidFlavor(f"flavor {name}: {e}") from e
        return cls(
            name=name,
            vcpus=_int_in("vcpus", obj["vcpus"], 1, MAX_VCPUS),
            memory_mb=_int_in("memory_mb", obj["memory_mb"], 1, MAX_MEMORY_MB),
            pci_alias=format_pci_requests(requests),
            pci_requests=requests,
            numa_policy=NumaPolicy(policy) if policy is not None else None,
            numa_nodes=_int_in("numa_nodes", 1 if numa_nodes is None else numa_nodes, 1, MAX_NUMA_NODES),
            disk_gb=None if disk_gb is None else _int_in("disk_gb", disk_gb, 1, MAX_DISK_GB),
            image=image,
            pci_group=format_pci_groups(groups),
            pci_groups=groups,
        )

    def policy_for(self, alias: Alias) -> NumaPolicy:
        """The NUMA policy that applies to ``alias`` in this flavor: the flavor's, else the alias's."""
        return self.numa_policy if self.numa_policy is not None else alias.numa_policy
