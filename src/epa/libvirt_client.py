"""The one module that imports ``libvirt``: a small typed wrapper around a connection.

Every ``libvirtError`` is translated where it enters into :class:`epa.errors.LibvirtError` (or
:class:`epa.errors.LibvirtUnsupported` for ``VIR_ERR_NO_SUPPORT``), recognised by libvirt's error
code, never by its text. Values handed back are plain Python types, so the layers above stay typed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal

import libvirt

from epa.errors import LibvirtError, LibvirtUnsupported

NodeDeviceCap = Literal["pci", "net"]

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


def open_connection(uri: str) -> LibvirtConnection:
    """Open a read-write connection to ``uri`` (``qemu:///system``, ``test:///path/to/node.xml``)."""
    _quiet_libvirt()
    with _calling(f"cannot connect to libvirt at {uri!r}"):
        conn = libvirt.open(uri)
    return LibvirtConnection(conn, uri)


class LibvirtConnection:
    """An open ``virConnect``; a context manager that closes it."""

    def __init__(self, conn: Any, uri: str) -> None:
        self._conn = conn
        self.uri = uri

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
