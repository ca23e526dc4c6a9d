"""Make a host's libvirt domains what the API says its servers should be, level-triggered: each pass
reads the desired state (the API's servers on this host) and the actual one (libvirt's domains) and
acts on the difference, so an agent restarted at any point converges. One log line per action.

Rules by server status: ``scheduled``/``building`` are built (VFs configured, unmanaged devices
detached, domain defined and started) and reported ``active``; ``active`` must run, ``stopped`` must
be defined and not run; ``deleting`` is torn down (domain, VF settings, detached devices) and reported
released; ``error`` has no domain. A domain whose EPA metadata names a server the API does not list is
removed; a domain without EPA metadata is never touched, but its devices are never given to a server.
A failed build is undone completely and reported as ``error``, which releases the devices."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from epa.agent.boot import Boot, parts_in_use
from epa.agent.domain_build import (
    Devices,
    ServerPlan,
    domain_name,
    domain_type_for,
    plan_server,
    plan_teardown,
    server_view,
)
from epa.agent.hypervisor import HypervisorState, KvmProbe, choose_domain_type, probe_kvm, tell_unreachable
from epa.client import JsonObject
from epa.crashpoints import crash_point
from epa.domain.address import PciAddress
from epa.domain.host import HostReport, NumaCell
from epa.errors import EpaError, Forbidden, LibvirtError, LibvirtTimeout, ServiceUnavailable, Unauthorized
from epa.hostnet.vf import VfConfig
from epa.libvirt_client import LibvirtConnection
from epa.virt import DomainType, InvalidDomainXml, build_domain_xml, parse_domain_devices, parse_domain_metadata
from epa.virt import parse_macvtap_netdevs as macvtap_netdevs

log = logging.getLogger("epa.agent.reconcile")

# Errors that are not this server's fault: stop the pass, the agent's loop backs off or ends.
_FATAL = (Unauthorized, Forbidden, ServiceUnavailable)
_STARTABLE = frozenset({"shutoff", "crashed"})
_GOING = frozenset({"deleting", "error"})
_MAX_REASON = 4000  # the API keeps at most 4096 characters of a status reason
_MAX_WARNINGS, _MAX_WARNING = 20, 1000  # a host's hypervisor warnings: at most 20 of 1000 characters

VfBackend = Callable[[VfConfig], object]


class Vfio(Protocol):
    """Binds a function to vfio-pci and back (``epa.agent.vfio_bind.SysfsVfio`` is one)."""

    def detach(self, address: PciAddress) -> None: ...

    def reattach(self, address: PciAddress) -> None: ...


class ServerApi(Protocol):
    """The routes the reconciler uses (``epa.client.ApiClient`` has them)."""

    def host_servers(self, host: str) -> list[JsonObject]: ...

    def post_server_state(
        self,
        server_id: str,
        *,
        status: str | None = None,
        reason: str | None = None,
        domain_uuid: str | None = None,
        domain_state: str | None = None,
        domain_xml: str | None = None,
    ) -> JsonObject: ...

    def post_released(self, server_id: str) -> JsonObject | None: ...

    def put_hypervisor(self, name: str, state: Mapping[str, Any]) -> JsonObject: ...
    def put_console(self, server_id: str, text: str) -> JsonObject: ...
    def put_images(self, name: str, parts: Sequence[Mapping[str, Any]]) -> JsonObject: ...


class DeviceInUse(EpaError):
    """Another domain on the host holds the device; ``addresses`` are the server's devices concerned,
    which a failed build must leave as they are."""

    code = "device_in_use"

    def __init__(self, message: str, addresses: Iterable[PciAddress]) -> None:
        super().__init__(message)
        self.addresses = frozenset(addresses)


@dataclass(frozen=True, slots=True)
class Domain:
    """A domain on the host as the pass saw it, with what it uses and whose it is (None: not EPA's)."""

    name: str
    state: str
    server_id: str | None
    addresses: frozenset[PciAddress]
    netdevs: frozenset[str]


@dataclass
class Summary:
    """What one pass did: ``actions`` one line each, ``failures`` per server that could not be handled."""

    servers: int = 0
    domains: int = 0
    actions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Reconciler:
    """Reconciles host ``host_name``'s servers. ``connect`` opens the hypervisor connection (kept open
    between passes, reopened after a failure to list domains); ``view`` gives the host's classified
    devices and NUMA cells; ``vf_backend`` applies one VF's settings (None: VFs are not configured).
    ``vfio`` binds unmanaged devices to vfio-pci and back (None: libvirt's node-device detach does).
    Each (re)connection tells the API the hypervisor's state and domain type (``uri`` names it there;
    ``kvm_probe`` checks that KVM runs); a hypervisor that cannot be reached is put on the host and on
    the servers waiting for it."""

    def __init__(
        self,
        client: ServerApi,
        host_name: str,
        connect: Callable[[], LibvirtConnection],
        view: Callable[[], HostReport],
        vf_backend: VfBackend | None,
        *,
        uri: str = "the hypervisor",
        kvm_probe: KvmProbe = probe_kvm,
        vfio: Vfio | None = None,
        boot: Boot | None = None,
        domain_type: DomainType | None = None,
        host_warnings: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        self.vfio = vfio
        self.host_warnings = host_warnings
        # What the API was last told of the hypervisor (None: nothing since the last (re)connection, or
        # it was told the hypervisor is unreachable since).
        self._hypervisor_told: HypervisorState | None = None
        self.client = client
        self.uri = uri
        self.kvm_probe = kvm_probe
        self.hypervisor: HypervisorState | None = None
        self.boot = boot
        self.domain_type = domain_type
        self._in_use: set[str] = set()
        self.host_name = host_name
        self.connect = connect
        self.view = view
        self.vf_backend = vf_backend
        self._conn: LibvirtConnection | None = None
        self._summary = Summary()
        self._removed: set[str] = set()
        # What the API was last told the image cache holds (None: nothing told yet, since this start).
        self._images_told: dict[str, int] | None = None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- one pass ------------------------------------------------------------------------------

    def reconcile_once(self) -> Summary:
        """One pass over every server of the host and every domain on it. Raises when the API or the
        hypervisor cannot be read at all; a failure with one server is logged and counted.

        Removals go first (deleting and error servers, orphan domains), so that what they held is free
        by the time a server that now holds it is built."""
        self._summary = summary = Summary()
        servers = self.client.host_servers(self.host_name)
        report = self.view()
        devices = {c.device.address: c for c in report.devices}
        try:
            conn = self._connection()
            domains = self._domains(conn, devices)
        except LibvirtError as e:
            tell_unreachable(self.client, self.host_name, self.uri, e, servers)
            self._hypervisor_told = None
            raise
        summary.servers, summary.domains = len(servers), len(domains)
        self._tell_hypervisor()
        self._removed = set()
        self._in_use = parts_in_use(s for s in servers if s.get("status") not in _GOING)
        going = [s for s in servers if s.get("status") in _GOING]
        for server in going:
            self._guarded(server, partial(self._server, conn, server, devices, report.numa_cells, domains))
        known = {s.get("id") for s in servers}
        for domain in domains:
            if domain.server_id is not None and domain.server_id not in known:
                self._guarded(
                    None, partial(self._remove, conn, domain, f"its server {domain.server_id} is not on this host")
                )
        if self.boot is not None:
            # Disks and seeds of servers gone from this host (a crash between two steps left them).
            live = {str(s.get("id")) for s in servers if s.get("status") != "deleting"}
            self._guarded(None, partial(self._collect, conn, live))
        left = [d for d in domains if d.name not in self._removed]
        for server in servers:
            if server.get("status") not in _GOING:
                self._guarded(server, partial(self._server, conn, server, devices, report.numa_cells, left))
        if self.boot is not None:
            try:
                self._tell_images(self.boot)
            except _FATAL:
                raise
            except EpaError as e:
                summary.failures.append(f"image cache report: {e}")
                log.error("image cache report: %s", e)
        return summary

    def _tell_hypervisor(self) -> None:
        """Put the hypervisor's state on the host, with the host-wide problems of ``host_warnings`` (VF
        provisioning refused), when it differs from what the API was last told: after a (re)connection,
        once a hypervisor said unreachable answers again, when the problems change."""
        if self.hypervisor is None:
            return
        extra = tuple(w[:_MAX_WARNING] for w in self.host_warnings()) if self.host_warnings is not None else ()
        warnings = (*self.hypervisor.warnings, *extra)[:_MAX_WARNINGS]
        state = dataclasses.replace(self.hypervisor, warnings=warnings)
        if state == self._hypervisor_told:
            return
        self.client.put_hypervisor(self.host_name, state.to_json())
        self._hypervisor_told = state

    def _tell_images(self, boot: Boot) -> None:
        """Tell the API which parts the image cache holds, when that changed (the scheduler weighs it)."""
        held = boot.cache.cached()
        if held != self._images_told:
            self.client.put_images(self.host_name, [{"sha256": s, "size": n} for s, n in sorted(held.items())])
            self._images_told = held

    def _guarded(self, server: JsonObject | None, action: Callable[[], None]) -> None:
        """Run ``action``; an EPA error is logged and counted, and the pass goes on (the next retries)."""
        try:
            action()
        except _FATAL:
            raise
        except EpaError as e:
            what = "orphan domain" if server is None else f"server {server.get('name')!r} ({server.get('id')})"
            self._summary.failures.append(f"{what}: {e}")
            log.error("%s: %s", what, e)

    def _did(self, action: str, level: int = logging.INFO) -> None:
        self._summary.actions.append(action)
        log.log(level, "%s", action)

    def _connection(self) -> LibvirtConnection:
        if self._conn is None:
            conn = self.connect()
            state = choose_domain_type(conn, self.kvm_probe)
            for warning in state.warnings:
                log.warning("%s", warning)
            self.hypervisor, self._conn = state, conn
            self._hypervisor_told = None  # told once the pass has listed the domains
        return self._conn

    def _domains(self, conn: LibvirtConnection, devices: Devices) -> list[Domain]:
        try:
            listed = conn.list_domains()
        except LibvirtTimeout:
            # Wedged, not gone: the connection remembers the call it waits for and refuses at once until
            # it returns (a new connection would hang behind it, a thread more each pass).
            raise
        except LibvirtError:
            # The connection may be dead (libvirtd restarted): open a new one next pass.
            dead, self._conn = self._conn, None
            if dead is not None:
                with contextlib.suppress(LibvirtError):
                    dead.close()
            raise
        by_netdev = {c.device.netdev: a for a, c in devices.items() if c.device.netdev is not None}
        out = []
        for name, _uuid, state in listed:
            try:
                xml = conn.domain_xml(name)
            except LibvirtError:
                if conn.domain_state(name) is None:
                    continue  # undefined since the listing
                raise
            try:
                meta = parse_domain_metadata(xml)
                addresses = parse_domain_devices(xml)
                netdevs = macvtap_netdevs(xml)
            except InvalidDomainXml as e:
                log.warning("domain %s: cannot read what it uses (%s)", name, e)
                continue
            # A macvtap port uses its VF as much as a passthrough does.
            addresses |= {by_netdev[n] for n in netdevs if n in by_netdev}
            server_id = meta.server_id if meta is not None else None
            out.append(Domain(name, state, server_id, frozenset(addresses), frozenset(netdevs)))
        return out

    # -- one server ----------------------------------------------------------------------------

    def _server(
        self,
        conn: LibvirtConnection,
        server: JsonObject,
        devices: Devices,
        cells: Sequence[NumaCell],
        domains: Sequence[Domain],
    ) -> None:
        status = server.get("status")
        server_id = str(server.get("id"))
        name = domain_name(server_view(server))
        own = [d for d in domains if d.name == name or d.server_id == server_id]
        ours = next((d for d in own if d.name == name), None)
        if status in ("scheduled", "building"):
            if status == "scheduled":
                self.client.post_server_state(server_id, status="building")
                self._did(f"server {server['name']}: building")
            self._build(conn, server, devices, cells, domains, start=True, then="active")
        elif status == "active":
            if ours is None:
                self._did(f"server {server['name']}: domain {name} is missing; building it again")
                if not self._build(conn, server, devices, cells, domains, start=True, then=None):
                    return
            elif ours.state in _STARTABLE:
                conn.start_domain(name)
                self._did(f"server {server['name']}: started domain {name} (it was {ours.state})")
            self._report(conn, server, name)
            self._ship_console(server_id)
        elif status == "stopped":
            if ours is None:
                self._did(f"server {server['name']}: domain {name} is missing; defining it again")
                if not self._build(conn, server, devices, cells, domains, start=False, then=None):
                    return
            elif ours.state not in _STARTABLE:
                conn.destroy_domain(name)
                self._did(f"server {server['name']}: stopped domain {name}")
            self._report(conn, server, name)
        elif status == "deleting":
            self._remove_domains(conn, own, server, "is deleted")
            self._remove_boot(conn, server)
            left = self._give_back(conn, server, devices, skip=frozenset())
            if left:
                # Released all the same (the domain is gone), but what was not undone is on the server,
                # not only in this agent's log: the operator has a device to look at.
                self.client.post_server_state(
                    server_id, reason=f"released; not undone: {'; '.join(left)}"[:_MAX_REASON]
                )
            crash_point("agent.teardown.before_released")
            self.client.post_released(server_id)
            self._did(f"server {server['name']}: released")
        elif status == "error":
            self._remove_domains(conn, own, server, "is in error")
            self._remove_boot(conn, server)

    def _build(
        self,
        conn: LibvirtConnection,
        server: JsonObject,
        devices: Devices,
        cells: Sequence[NumaCell],
        domains: Sequence[Domain],
        *,
        start: bool,
        then: str | None,
    ) -> bool:
        """Make the server's domain; on any failure undo everything and report ``error``. True when built."""
        server_id = str(server["id"])
        name = domain_name(server_view(server))
        try:
            known = self.hypervisor.domain_type if self.hypervisor is not None else None
            plan = plan_server(
                server_view(server), devices, cells, self.domain_type or known or domain_type_for(conn.uri)
            )
            self._check_free(plan, server_id, domains, devices)
            for config in plan.vf_configs:
                self._configure_vf(config)
            for address in plan.detach:
                if self.vfio is not None:
                    self.vfio.detach(address)
                else:
                    conn.node_device_detach(address)
                self._did(f"server {server['name']}: detached {address} from its host driver")
            spec = plan.spec
            if self.boot is not None:
                spec = self.boot.prepare(conn, server, self._in_use).apply(spec)
            crash_point("agent.build.before_define")
            domain_uuid = conn.define_domain(build_domain_xml(spec))
            crash_point("agent.build.after_define")
            if start:
                _start_naming_devices(conn, name, plan.addresses)
                crash_point("agent.build.after_start")
        except _FATAL:
            raise
        except EpaError as e:
            skip = e.addresses if isinstance(e, DeviceInUse) else frozenset()
            self._fail(conn, server, devices, str(e), skip=skip)
            return False
        self._did(f"server {server['name']}: domain {name} {'defined and started' if start else 'defined'}")
        state, xml = conn.domain_state(name), conn.domain_xml(name)
        self.client.post_server_state(
            server_id, status=then, domain_uuid=domain_uuid, domain_state=state, domain_xml=xml
        )
        if then is not None:
            self._did(f"server {server['name']}: {then}")
        return True

    def _check_free(self, plan: ServerPlan, server_id: str, domains: Sequence[Domain], devices: Devices) -> None:
        """Raise :class:`DeviceInUse` naming the device and the domain when another domain already holds
        one of the server's devices, the PF of one of its VFs or a VF of one of its PFs."""
        for domain in domains:
            if domain.name == plan.spec.name or domain.server_id == server_id:
                continue
            for address in sorted(plan.addresses):
                clash = _related(address, devices) & domain.addresses
                if clash:
                    held = min(clash)
                    how = "" if held == address else f" (through {held})"
                    raise DeviceInUse(f"device {address} is already used by domain {domain.name!r}{how}", {address})
            netdevs = plan.netdevs & domain.netdevs
            if netdevs:
                netdev = min(netdevs)
                used = {a for a, c in devices.items() if c.device.netdev == netdev}
                raise DeviceInUse(f"netdev {netdev} is already used by domain {domain.name!r} (macvtap)", used)

    def _configure_vf(self, config: VfConfig) -> None:
        if self.vf_backend is None:
            return
        self.vf_backend(config)
        self._did(f"configured {config.pf_ifname} VF {config.vf_index}: " + _vf_text(config))

    def _fail(
        self, conn: LibvirtConnection, server: JsonObject, devices: Devices, reason: str, skip: Iterable[PciAddress]
    ) -> None:
        name = domain_name(server_view(server))
        try:
            conn.destroy_domain(name)
            conn.undefine_domain(name)
        except LibvirtError as e:
            # A start past its deadline still holds the domain: the server goes to error all the same
            # (the error branch removes the domain once libvirt lets go of it), saying so.
            reason = f"{reason}; its domain is not removed yet: {e}"
        left = self._give_back(conn, server, devices, skip=frozenset(skip))
        if left:
            reason = f"{reason}; not undone: {'; '.join(left)}"
        self._remove_boot(conn, server)
        self.client.post_server_state(str(server["id"]), status="error", reason=reason[:_MAX_REASON])
        self._did(f"server {server['name']}: error: {reason}", logging.ERROR)

    def _remove_domains(self, conn: LibvirtConnection, own: Iterable[Domain], server: JsonObject, why: str) -> None:
        for domain in own:
            self._remove(conn, domain, f"server {server['name']} {why}")

    def _remove(self, conn: LibvirtConnection, domain: Domain, why: str) -> None:
        conn.destroy_domain(domain.name)
        crash_point("agent.teardown.after_destroy")
        conn.undefine_domain(domain.name)
        self._removed.add(domain.name)
        self._did(f"removed domain {domain.name} ({why})")

    def _ship_console(self, server_id: str) -> None:
        if self.boot is None:
            return
        text = self.boot.console_update(server_id)
        if text is not None:
            self.client.put_console(server_id, text)

    def _remove_boot(self, conn: LibvirtConnection, server: JsonObject) -> None:
        if self.boot is None:
            return
        for line in self.boot.remove(conn, server):
            self._did(f"server {server.get('name')}: {line}")

    def _collect(self, conn: LibvirtConnection, live: set[str]) -> None:
        assert self.boot is not None  # noqa: S101 - called only with one
        for line in self.boot.collect(conn, live):
            self._did(line)

    def _give_back(
        self, conn: LibvirtConnection, server: JsonObject, devices: Devices, skip: frozenset[PciAddress]
    ) -> list[str]:
        """Reset the server's VFs and reattach its unmanaged devices, going on past failures: what one
        device refuses must not keep the others (or the release) back. What failed, one line each."""
        left: list[str] = []
        teardown, warnings = plan_teardown(server_view(server), devices)
        for warning in warnings:
            log.warning("%s", warning)
        if self.vf_backend is not None:
            for address, config in teardown.vf_resets:
                if address in skip:
                    continue
                try:
                    self.vf_backend(config)
                except _FATAL:
                    raise
                except EpaError as e:
                    left.append(f"cannot reset {config.pf_ifname} VF {config.vf_index} ({address}): {e}")
                    log.warning("server %s: %s", server.get("name"), left[-1])
                    continue
                self._did(f"server {server['name']}: reset {config.pf_ifname} VF {config.vf_index}")
        for address in teardown.reattach:
            if address in skip:
                continue
            try:
                if self.vfio is not None:
                    self.vfio.reattach(address)
                else:
                    conn.node_device_reattach(address)
            except EpaError as e:
                left.append(f"cannot reattach {address}: {e}")
                log.warning("server %s: %s", server.get("name"), left[-1])
                continue
            self._did(f"server {server['name']}: reattached {address} to its host driver")
        return left

    def _report(self, conn: LibvirtConnection, server: JsonObject, name: str) -> None:
        """Post the domain's state and XML when they differ from what the API last heard."""
        state = conn.domain_state(name)
        xml = conn.domain_xml(name) if state is not None else None
        if state == server.get("domain_state") and xml == server.get("domain_xml"):
            return
        self.client.post_server_state(str(server["id"]), domain_state=state, domain_xml=xml)
        self._did(f"server {server['name']}: domain {name} is {state}")


def _start_naming_devices(conn: LibvirtConnection, name: str, addresses: Iterable[PciAddress]) -> None:
    """Start the domain; a failure names the devices passed through, which libvirt's message may not
    ("Failed to load PCI stub module vfio-pci" says which driver, not for which device)."""
    try:
        conn.start_domain(name)
    except LibvirtError as e:
        passed = ", ".join(str(a) for a in sorted(addresses))
        if not passed:
            raise
        raise type(e)(f"{e} (passing through {passed})", e.libvirt_code) from e


def _related(address: PciAddress, devices: Devices) -> set[PciAddress]:
    """``address`` with its PF or its VFs: a PF and its VFs are never used at the same time."""
    device = devices.get(address)
    if device is None:
        return {address}
    parent = device.device.parent_addr
    return {address, *device.device.vf_addrs, *([parent] if parent is not None else [])}


def _vf_text(config: VfConfig) -> str:
    parts: list[str] = []
    fields: Mapping[str, Any] = {
        "mac": config.mac,
        "vlan": config.vlan,
        "trust": config.trusted,
        "spoofchk": config.spoofchk,
    }
    for key, value in fields.items():
        if value is not None:
            parts.append(f"{key} {('on' if value else 'off') if isinstance(value, bool) else value}")
    return ", ".join(parts)
