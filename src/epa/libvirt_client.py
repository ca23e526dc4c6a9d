"""The one module that imports ``libvirt``: a small typed wrapper around a connection.

Every ``libvirtError`` is translated where it enters into :class:`epa.errors.LibvirtError` (or
:class:`epa.errors.LibvirtUnsupported` for ``VIR_ERR_NO_SUPPORT``), recognised by libvirt's error
code, never by its text. Values handed back are plain Python types, so the layers above stay typed.
"""

from __future__ import annotations

import functools
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal, TypeVar

import libvirt

from epa.domain.address import PciAddress
from epa.errors import LibvirtError, LibvirtTimeout, LibvirtUnsupported

T = TypeVar("T")

NodeDeviceCap = Literal["pci", "net"]

EVENT_LOOP_THREAD = "libvirt-event-loop"
_EVENT_LOOP_BACKOFF_S = 0.1
# How long a call that may hang (connect, define, start, destroy) is waited for. A domain start returns
# once QEMU runs, not when the guest has booted: minutes are plenty even under TCG on a loaded host.
DEFAULT_DEADLINE_S = 300.0

_CAP_FLAGS: dict[str, int] = {
    "pci": libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV,
    "net": libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET,
}


def _ignore_error(_ctx: object, _err: object) -> None:
    """libvirt's default handler prints every error to stderr; ours are raised instead."""


@functools.cache
def _quiet_libvirt() -> None:
    libvirt.registerErrorHandler(_ignore_error, None)


def _translate(e: Any, what: str) -> LibvirtError:
    """A ``libvirtError`` as EPA's error: ``what`` names the call and its object."""
    code = e.get_error_code()
    libvirt_code = int(code) if code is not None else None
    detail = e.get_error_message() or str(e)
    message = f"{what}: {detail}"
    if libvirt_code == libvirt.VIR_ERR_NO_SUPPORT:
        return LibvirtUnsupported(message, libvirt_code)
    return LibvirtError(message, libvirt_code)


@contextmanager
def _calling(what: str) -> Iterator[None]:
    try:
        yield
    except libvirt.libvirtError as e:
        raise _translate(e, what) from e


class _Call(threading.Thread):
    """One libvirt call in a thread of its own, so that its caller can stop waiting: a blocking libvirt
    call cannot be interrupted. ``abandoned`` is set when the caller gave up; ``on_abandoned`` then
    receives what the call returned late (a connection opened too late is closed)."""

    def __init__(self, step: str, call: Callable[[], Any], on_abandoned: Callable[[Any], None] | None) -> None:
        super().__init__(name=f"libvirt: {step}", daemon=True)
        self.step, self.call, self.on_abandoned = step, call, on_abandoned
        self.started_at = time.monotonic()
        self.abandoned = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            result = self.call()
        except BaseException as e:  # handed to the waiting caller, who raises it
            self.error = e
            return
        with self._lock:
            self.result = result
            late = self.abandoned
        if late and self.on_abandoned is not None:
            self.on_abandoned(result)

    def wait(self, deadline_s: float) -> Any:
        """The call's result within ``deadline_s``; :class:`LibvirtTimeout` naming the step otherwise."""
        self.join(deadline_s)
        with self._lock:
            if self.is_alive():
                self.abandoned = True
                raise LibvirtTimeout(
                    f"{self.step}: no answer within {deadline_s:g}s (the call goes on in the background)"
                )
        if self.error is not None:
            raise self.error
        return self.result


def _close_late(conn: Any) -> None:
    try:
        conn.close()
    except libvirt.libvirtError:
        return


def open_connection(uri: str, deadline_s: float = DEFAULT_DEADLINE_S) -> LibvirtConnection:
    """Open a read-write connection to ``uri`` (``qemu:///system``, ``test:///path/to/node.xml``,
    ``qemu:///embed?root=DIR``: the event loop that one needs is registered first). A daemon that takes
    the connection and never answers is :class:`LibvirtTimeout` after ``deadline_s``, which is also the
    deadline of the connection's calls that may hang (define, start, destroy)."""
    _quiet_libvirt()
    if is_embedded_uri(uri):
        ensure_event_loop()
    what = f"cannot connect to libvirt at {uri!r}"
    with _calling(what):
        conn = _Call(what, lambda: libvirt.open(uri), _close_late)
        conn.start()
        return LibvirtConnection(conn.wait(deadline_s), uri, deadline_s)


class LibvirtConnection:
    """An open ``virConnect``; a context manager that closes it. The calls that may hang (define, start,
    destroy, the listing that begins each pass) are waited for at most ``deadline_s`` each. While one
    that ran past it has not returned, every call on the connection is a :class:`LibvirtTimeout` at once
    naming it: libvirt holds that domain's lock meanwhile, and anything that touches the domain (a
    listing does) would hang behind it."""

    def __init__(self, conn: Any, uri: str, deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        self._conn = conn
        self.uri = uri
        self.deadline_s = deadline_s
        self._pending: _Call | None = None

    def _within(self, step: str, call: Callable[[], T]) -> T:
        """``call()``, waited for at most ``deadline_s``; libvirt's errors translated naming ``step``."""
        running = _Call(step, call, None)
        with _calling(step):
            running.start()
            try:
                result: T = running.wait(self.deadline_s)
            except LibvirtTimeout:
                self._pending = running
                raise
        return result

    def __enter__(self) -> LibvirtConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        with _calling(f"closing the libvirt connection to {self.uri!r}"):
            conn.close()

    @property
    def _live(self) -> Any:
        if self._conn is None:
            raise LibvirtError(f"the libvirt connection to {self.uri!r} is closed")
        earlier = self._pending
        if earlier is not None:
            if earlier.is_alive():
                raise LibvirtTimeout(
                    f"libvirt at {self.uri!r} still works on an earlier call past its deadline "
                    f"({earlier.step}, {time.monotonic() - earlier.started_at:.0f}s ago)"
                )
            self._pending = None
        return self._conn

    # --- node devices -------------------------------------------------------------------------

    def node_device_xml(self, cap: NodeDeviceCap) -> list[tuple[str, str]]:
        """``(name, XML)`` of every node device with capability ``cap``, sorted by name.

        A device that disappears between the listing and the XML read (a VF removed meanwhile:
        ``VIR_ERR_NO_NODE_DEVICE``) is left out, as if the listing had been taken a moment later."""
        flag = _CAP_FLAGS.get(cap)
        if flag is None:
            raise ValueError(f"node device capability {cap!r} is not one of {sorted(_CAP_FLAGS)}")
        conn = self._live
        with _calling(f"cannot list {cap} node devices on {self.uri!r}"):
            devices = conn.listAllDevices(flag)
        out: list[tuple[str, str]] = []
        for dev in devices:
            with _calling(f"cannot read a {cap} node device's name on {self.uri!r}"):
                name = str(dev.name())
            try:
                xml = str(dev.XMLDesc(0))
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_NODE_DEVICE:
                    continue
                raise _translate(e, f"cannot read node device {name!r} on {self.uri!r}") from e
            out.append((name, xml))
        out.sort()
        return out

    def _node_device(self, name: str) -> Any:
        with _calling(f"node device {name!r} on {self.uri!r}"):
            return self._live.nodeDeviceLookupByName(name)

    def detach_node_device(self, name: str) -> None:
        """Unbind node device ``name`` from its host driver and bind it to vfio-pci."""
        dev = self._node_device(name)
        with _calling(f"cannot detach node device {name!r} on {self.uri!r}"):
            dev.dettach()  # sic: libvirt's spelling

    def reattach_node_device(self, name: str) -> None:
        """Give node device ``name`` back to its host driver."""
        dev = self._node_device(name)
        with _calling(f"cannot reattach node device {name!r} on {self.uri!r}"):
            dev.reAttach()

    def node_device_detach(self, address: PciAddress) -> None:
        """Unbind the PCI function at ``address`` from its host driver and bind it to vfio-pci.

        Raises :class:`LibvirtUnsupported` where the driver cannot (the ``test:///`` driver)."""
        name = address.libvirt_name
        dev = self._node_device(name)
        with _calling(f"cannot detach PCI device {address} ({name}) on {self.uri!r}"):
            dev.dettach()  # sic: libvirt's spelling

    def node_device_reattach(self, address: PciAddress) -> None:
        """Give the PCI function at ``address`` back to its host driver."""
        name = address.libvirt_name
        dev = self._node_device(name)
        with _calling(f"cannot reattach PCI device {address} ({name}) on {self.uri!r}"):
            dev.reAttach()

    # --- what the hypervisor offers ----------------------------------------------------------

    def domain_capabilities(self, virttype: str, arch: str = "x86_64") -> str:
        """libvirt's domain capabilities XML for ``virttype`` (``kvm``, ``qemu``) on ``arch``. Raises
        :class:`LibvirtError` naming libvirt's reason when the host does not offer it (no KVM, say)."""
        with _calling(f"{virttype} domain capabilities on {self.uri!r}"):
            return str(self._live.getDomainCapabilities(None, arch, None, virttype, 0))

    # --- domains ------------------------------------------------------------------------------
    #
    # The idempotent calls (destroy, undefine, state) treat "no such domain" as done: reconciliation is
    # level-triggered, and a retry after a crash must not fail on the half it had already finished.

    def _domain(self, name: str) -> Any:
        with _calling(f"domain {name!r} on {self.uri!r}"):
            return self._live.lookupByName(name)

    def _domain_or_none(self, name: str) -> Any | None:
        try:
            return self._live.lookupByName(name)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise _translate(e, f"domain {name!r} on {self.uri!r}") from e

    def define_domain(self, xml: str) -> str:
        """Define (or redefine) a persistent domain from ``xml``; its UUID."""
        conn = self._live
        return self._within(f"cannot define a domain on {self.uri!r}", lambda: str(conn.defineXML(xml).UUIDString()))

    def start_domain(self, name: str) -> None:
        """Start defined domain ``name``; a domain that already runs is left alone."""
        dom = self._domain(name)
        with _calling(f"cannot start domain {name!r} on {self.uri!r}"):
            if dom.isActive():
                return
        self._within(f"cannot start domain {name!r} on {self.uri!r}", dom.create)

    def destroy_domain(self, name: str) -> None:
        """Power domain ``name`` off at once; a missing or stopped domain is fine."""
        dom = self._domain_or_none(name)
        if dom is None:
            return
        what = f"cannot destroy domain {name!r} on {self.uri!r}"
        try:
            if dom.isActive():
                self._within(what, dom.destroy)
        except LibvirtError as e:
            # It stopped (or went away) between the check and the call: what was asked for holds.
            if e.libvirt_code == libvirt.VIR_ERR_NO_DOMAIN:
                return
            if e.libvirt_code == libvirt.VIR_ERR_OPERATION_INVALID and not self._active(name):
                return
            raise
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return
            raise _translate(e, what) from e

    def _active(self, name: str) -> bool:
        dom = self._domain_or_none(name)
        with _calling(f"domain {name!r} on {self.uri!r}"):
            return dom is not None and bool(dom.isActive())

    def undefine_domain(self, name: str) -> None:
        """Remove domain ``name``'s persistent definition (a running one becomes transient and goes
        when destroyed); a missing domain is fine. Managed-save images and snapshot metadata go too."""
        dom = self._domain_or_none(name)
        if dom is None:
            return
        flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return
            raise _translate(e, f"cannot undefine domain {name!r} on {self.uri!r}") from e

    def domain_state(self, name: str) -> str | None:
        """``running``, ``shutoff``, ``paused``, ... for domain ``name``; None when there is no such domain."""
        dom = self._domain_or_none(name)
        if dom is None:
            return None
        try:
            state = dom.state()[0]
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise _translate(e, f"cannot read the state of domain {name!r} on {self.uri!r}") from e
        return _STATE_NAMES.get(int(state), f"unknown({state})")

    def list_domains(self) -> list[tuple[str, str, str]]:
        """``(name, uuid, state)`` of every domain, running or only defined, sorted by name. A domain
        removed between the listing and the reads is left out."""
        conn = self._live
        domains = self._within(f"cannot list domains on {self.uri!r}", lambda: conn.listAllDomains(0))
        out: list[tuple[str, str, str]] = []
        for dom in domains:
            try:
                name, uuid, state = str(dom.name()), str(dom.UUIDString()), int(dom.state()[0])
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue
                raise _translate(e, f"cannot read a domain on {self.uri!r}") from e
            out.append((name, uuid, _STATE_NAMES.get(state, f"unknown({state})")))
        out.sort()
        return out

    def domain_xml(self, name: str, inactive: bool = False) -> str:
        """Domain ``name``'s XML: the live definition while it runs, or the persistent one if ``inactive``."""
        dom = self._domain(name)
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        with _calling(f"cannot read the XML of domain {name!r} on {self.uri!r}"):
            return str(dom.XMLDesc(flags))

    # --- storage (a directory pool the agent owns; see epa.virt.disks) ---------------------------

    def ensure_pool(self, name: str, xml: str) -> None:
        """Define (from ``xml``), build and start storage pool ``name`` unless it runs already."""
        conn = self._live
        try:
            pool = conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as e:
            if e.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise _translate(e, f"storage pool {name!r} on {self.uri!r}") from e
            with _calling(f"cannot define storage pool {name!r} on {self.uri!r}"):
                pool = conn.storagePoolDefineXML(xml, 0)
                pool.build(0)
        with _calling(f"cannot start storage pool {name!r} on {self.uri!r}"):
            if not pool.isActive():
                pool.create(0)
            pool.setAutostart(1)
            pool.refresh(0)

    def _pool(self, name: str) -> Any:
        with _calling(f"storage pool {name!r} on {self.uri!r}"):
            return self._live.storagePoolLookupByName(name)

    def create_volume(self, pool: str, xml: str) -> str:
        """Create a volume in ``pool`` from its XML (libvirt runs qemu-img for a qcow2); its path."""
        p = self._pool(pool)
        with _calling(f"cannot create a volume in storage pool {pool!r} on {self.uri!r}"):
            return str(p.createXML(xml, 0).path())

    def delete_volume(self, pool: str, name: str) -> None:
        """Delete volume ``name`` of ``pool``; a missing one is fine."""
        p = self._pool(pool)
        try:
            vol = p.storageVolLookupByName(name)
            vol.delete(0)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return
            raise _translate(e, f"cannot delete volume {name!r} of storage pool {pool!r} on {self.uri!r}") from e

    def list_volumes(self, pool: str) -> list[tuple[str, str]]:
        """``(name, XML)`` of every volume of ``pool`` (refreshed first: files may have come or gone)."""
        p = self._pool(pool)
        with _calling(f"cannot list the volumes of storage pool {pool!r} on {self.uri!r}"):
            p.refresh(0)
            out = []
            for vol in p.listAllVolumes(0):
                try:
                    out.append((str(vol.name()), str(vol.XMLDesc(0))))
                except libvirt.libvirtError as e:
                    if e.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                        continue
                    raise
        return sorted(out)


_STATE_NAMES: dict[int, str] = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}


# --- the event loop -------------------------------------------------------------------------------


def _run_event_loop() -> None:
    while True:
        # A failing iteration must not end the loop: every connection of the process depends on it.
        try:
            libvirt.virEventRunDefaultImpl()
        except libvirt.libvirtError:
            time.sleep(_EVENT_LOOP_BACKOFF_S)  # not a busy loop if the failure persists


@functools.cache
def ensure_event_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread, once per process.

    ``qemu:///embed`` runs the QEMU driver inside this process, and the driver waits on its monitor
    sockets through this loop: without it, starting a domain hangs. Call it before opening such a
    connection (libvirt takes the loop registered when the first connection opens)."""
    _quiet_libvirt()
    with _calling("cannot register libvirt's event loop"):
        libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=_run_event_loop, name=EVENT_LOOP_THREAD, daemon=True).start()


def is_embedded_uri(uri: str) -> bool:
    """Whether ``uri`` runs a hypervisor driver inside this process (``qemu:///embed?root=...``)."""
    parsed = urllib.parse.urlsplit(uri)
    return parsed.scheme.split("+", 1)[0] in ("qemu", "ch") and parsed.path == "/embed"


def embedded_qemu_uri(root: str) -> str:
    """The URI of an in-process QEMU driver keeping its state under ``root`` (its ``qemu.conf`` is
    ``ROOT/etc/qemu.conf``)."""
    return f"qemu:///embed?root={urllib.parse.quote(root, safe='/')}"


def open_embedded_qemu(root: str) -> LibvirtConnection:
    """Open ``qemu:///embed?root=ROOT`` with the event loop it needs running.

    libvirt allows one embedded root per process for the life of the process: a second root is
    refused (``VIR_ERR_INTERNAL_ERROR``), even after the first connection is closed."""
    ensure_event_loop()
    return open_connection(embedded_qemu_uri(root))
