"""The one exception tree of EPA.

Every error raised on purpose by EPA code is an ``EpaError`` and carries a stable, machine-readable
``code`` (once set, never changed: API clients and scripts match on it) and a message that names the
field and the value at fault. Library errors (``OSError`` from sysfs, ``libvirtError``, JSON and TOML
decode errors) are translated where they enter, with ``raise ... from``.

    EpaError
    ├── InvalidInput                 bad input from a user or a config file (maps to 4xx / exit 2)
    │   ├── InvalidPciAddress        a PCI address that does not parse
    │   ├── InvalidHexId             a vendor / product / class id that does not parse
    │   ├── DeviceSpecError          a device_spec entry that Nova would reject too
    │   └── ConfigError              a config file that cannot be read or parsed
    │   └── (domain errors: InvalidAlias, InvalidPciRequest, InvalidStatusTransition, InvalidPciGroup live beside
    │        the rules they guard, and subclass these)
    ├── NotFound                     a named resource does not exist (404)
    ├── Conflict                     the request clashes with the current state (409)
    │   └── GenerationConflict       a stale or concurrent inventory report (409)
    ├── Unauthorized                 no or unknown token (401)
    ├── Forbidden                    a valid token that may not do this (403)
    ├── PayloadTooLarge              a request body past the route's size limit (413)
    ├── ServiceUnavailable           the API server cannot be reached or answers 5xx
    ├── DiscoveryError               the host cannot be read at all (no PCI bus in the sysfs root)
    └── LibvirtError                 a libvirt call failed; keeps libvirt's error code
        ├── LibvirtUnsupported       the connection driver does not support the call
        └── LibvirtTimeout           a call that may hang (connect, define, start, destroy) ran past its deadline
"""

from __future__ import annotations


class EpaError(Exception):
    """Base of every error EPA raises on purpose."""

    code: str = "epa_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(EpaError, ValueError):
    """Input from a user or a config file is wrong; the message names the field and the value."""

    code = "invalid_input"


class InvalidPciAddress(InvalidInput):
    code = "invalid_pci_address"


class InvalidHexId(InvalidInput):
    code = "invalid_hex_id"


class DeviceSpecError(InvalidInput):
    code = "invalid_device_spec"


class ConfigError(InvalidInput):
    code = "invalid_config"


class NotFound(EpaError):
    code = "not_found"


class Conflict(EpaError):
    code = "conflict"


class GenerationConflict(Conflict):
    """The report's generation is not the host's current one; ``current`` is what the server has."""

    code = "generation_conflict"

    def __init__(self, message: str, current: int | None) -> None:
        super().__init__(message)
        self.current = current


class Unauthorized(EpaError):
    code = "unauthorized"


class Forbidden(EpaError):
    code = "forbidden"


class PayloadTooLarge(EpaError):
    code = "payload_too_large"


class ServiceUnavailable(EpaError):
    code = "service_unavailable"


class DiscoveryError(EpaError):
    code = "discovery_failed"


class LibvirtError(EpaError):
    """A libvirt call failed. ``libvirt_code`` is libvirt's own ``VIR_ERR_*`` number (or None)."""

    code = "libvirt_error"

    def __init__(self, message: str, libvirt_code: int | None = None) -> None:
        super().__init__(message)
        self.libvirt_code = libvirt_code


class LibvirtUnsupported(LibvirtError):
    """The connection driver does not implement the call (``VIR_ERR_NO_SUPPORT``)."""

    code = "libvirt_unsupported"


class LibvirtTimeout(LibvirtError):
    """A libvirt call did not return within its deadline (a wedged daemon, a QEMU or a file that blocks):
    the call goes on in the background, and the message names the step and the deadline."""

    code = "libvirt_timeout"
