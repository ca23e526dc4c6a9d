"""The agent's hypervisor as the API sees it: the domain type the agent makes (``kvm`` only where KVM
really runs a vCPU, else ``qemu`` with a warning) and whether the hypervisor can be reached at all. A
hypervisor the agent cannot reach is put on the host and on each server waiting for it (a reason, not a
server ``scheduled`` for ever in silence)."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lxml import etree

from epa.client import JsonObject
from epa.errors import LibvirtError
from epa.libvirt_client import LibvirtConnection
from epa.virt.spec import DomainType

log = logging.getLogger("epa.agent.hypervisor")

_WAITING = frozenset({"scheduled", "building"})
_PROBE_TIMEOUT_S = 60.0
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
KvmProbe = Callable[[str], str | None]


class HypervisorApi(Protocol):
    """The routes used here (``epa.client.ApiClient`` has them)."""

    def put_hypervisor(self, name: str, state: Mapping[str, Any]) -> JsonObject: ...

    def post_server_state(self, server_id: str, *, status: str | None = None, reason: str | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class HypervisorState:
    """What the agent says of its hypervisor: reachable (with the domain type it makes, and why not
    ``kvm``) or not (and why)."""

    uri: str
    reachable: bool
    reason: str | None = None
    domain_type: DomainType | None = None
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "reachable": self.reachable,
            "reason": self.reason,
            "domain_type": self.domain_type.value if self.domain_type is not None else None,
            "warnings": list(self.warnings),
        }


def probe_kvm(emulator: str) -> str | None:
    """Start ``emulator`` on KVM with the host's own CPU model, paused, and quit it through QMP: None when
    that works, else why not. A /dev/kvm that libvirt reports is not enough: on a host whose KVM cannot
    set the host CPU's MSRs (QEMU aborts "failed to set MSR") or gives a CPUID without basic features, a
    libvirt domain of type kvm may start and yet no guest kernel would run in it; creating a vCPU with
    the host's CPUID and loading its registers is what a guest needs first."""
    args = [emulator, "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-nodefaults", "-display", "none",
            "-S", "-qmp", "stdio"]  # fmt: skip
    qmp = '{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n'
    try:
        done = subprocess.run(  # noqa: S603 - a fixed argument list, the emulator libvirt named
            args, input=qmp, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{emulator} on KVM: {e}"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return f"{emulator} -accel kvm -cpu host exited {done.returncode}: {lines[0] if lines else 'no message'}"


def _emulator(domcaps_xml: str) -> str | None:
    root = etree.fromstring(domcaps_xml.encode(), _PARSER)
    path = root.findtext("path")
    return path.strip() if path else None


def choose_domain_type(conn: LibvirtConnection, kvm_works: KvmProbe = probe_kvm) -> HypervisorState:
    """The domain type for ``conn``'s hypervisor: ``test`` on libvirt's test driver, ``kvm`` where libvirt
    offers it and ``kvm_works`` (the emulator's real KVM probe) says it runs, else ``qemu`` (TCG) with a
    warning saying why."""
    if conn.uri.split(":", 1)[0].split("+", 1)[0] == "test":
        return HypervisorState(conn.uri, True, domain_type=DomainType.TEST)
    try:
        emulator = _emulator(conn.domain_capabilities("kvm"))
        problem = "libvirt names no emulator for kvm" if emulator is None else kvm_works(emulator)
    except LibvirtError as e:
        problem = str(e)
    if problem is None:
        return HypervisorState(conn.uri, True, domain_type=DomainType.KVM)
    warning = f"KVM does not work on this host ({problem}): servers get domains of type 'qemu' (TCG, much slower)"
    return HypervisorState(conn.uri, True, domain_type=DomainType.QEMU, warnings=(warning,))


def unreachable_reason(uri: str, error: Exception) -> str:
    return f"waiting for the hypervisor: cannot reach {uri}: {error}"


def tell_unreachable(
    client: HypervisorApi, host: str, uri: str, error: Exception, servers: Sequence[JsonObject]
) -> None:
    """Put ``error`` on the host and on each of its servers waiting to be built (once: a server that
    already says so is not written again)."""
    reason = unreachable_reason(uri, error)
    client.put_hypervisor(host, HypervisorState(uri, False, reason=reason[:4000]).to_json())
    for server in _waiting(servers):
        if server.get("status_reason") != reason[:4000]:
            client.post_server_state(str(server["id"]), reason=reason[:4000])


def _waiting(servers: Iterable[JsonObject]) -> list[JsonObject]:
    return [s for s in servers if s.get("status") in _WAITING]
