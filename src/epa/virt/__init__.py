"""Provisioning on the hypervisor side: what a server's libvirt domain looks like (its spec and XML)
and what an existing domain already uses on the host."""

from epa.virt.devices import (
    InvalidDomainXml,
    parse_domain_devices,
    parse_domain_metadata,
    parse_macvtap_netdevs,
)
from epa.virt.domain_xml import METADATA_NS, build_domain_xml
from epa.virt.spec import (
    DiskFormat,
    DiskSpec,
    DomainMetadata,
    DomainSpec,
    DomainType,
    HostdevSpec,
    InterfaceSpec,
    InvalidDomainSpec,
    KernelSpec,
)

__all__ = [
    "METADATA_NS",
    "DiskFormat",
    "DiskSpec",
    "DomainMetadata",
    "DomainSpec",
    "DomainType",
    "HostdevSpec",
    "InterfaceSpec",
    "InvalidDomainSpec",
    "InvalidDomainXml",
    "KernelSpec",
    "build_domain_xml",
    "parse_domain_devices",
    "parse_domain_metadata",
    "parse_macvtap_netdevs",
]
