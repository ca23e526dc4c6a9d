"""Read back what a domain XML (libvirt's or ours) uses on the host: the PCI functions it passes
through, the netdevs its macvtap ports sit on, and the EPA metadata that marks it as ours. The agent
uses these to check that no other domain already holds a device before it starts a server."""

from __future__ import annotations

from lxml import etree

from epa.domain.address import PciAddress
from epa.errors import InvalidInput, InvalidPciAddress
from epa.virt.domain_xml import METADATA_NS
from epa.virt.spec import DomainMetadata

# Domain XML comes from libvirt or from our builder, but an entity or a network fetch has no
# business in either: refuse both.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True, huge_tree=False)


class InvalidDomainXml(InvalidInput):
    code = "invalid_domain_xml"


def parse_domain(xml: str) -> etree._Element:
    """The ``<domain>`` root of ``xml``; :class:`InvalidDomainXml` if it is not a domain document."""
    try:
        root = etree.fromstring(xml.encode("utf-8"), parser=_PARSER)
    except etree.XMLSyntaxError as e:
        raise InvalidDomainXml(f"domain XML does not parse: {e}") from e
    if root.tag != "domain":
        raise InvalidDomainXml(f"domain XML: the root element is <{root.tag}>, not <domain>")
    return root


def _number(text: str | None, field: str) -> int:
    """A number as libvirt reads it (``strtoul`` base 0): ``0x3b`` hex, ``073`` octal, ``59`` decimal."""
    if text is None:
        raise InvalidPciAddress(f"PCI address: {field} is missing")
    raw = text.strip().lower()
    try:
        if raw.startswith("0x"):
            return int(raw[2:], 16)
        if len(raw) > 1 and raw.startswith("0"):
            return int(raw[1:], 8)
        return int(raw, 10)
    except ValueError:
        raise InvalidPciAddress(f"PCI address: {field} ({text!r}) is not a number") from None


def _address(el: etree._Element) -> PciAddress:
    # libvirt defaults a missing domain to 0; bus, slot and function are required by its schema.
    domain = el.get("domain")
    return PciAddress(
        _number(domain, "domain") if domain is not None else 0,
        _number(el.get("bus"), "bus"),
        _number(el.get("slot"), "slot"),
        _number(el.get("function"), "function"),
    )


def passthrough_addresses(root: etree._Element) -> set[PciAddress]:
    """The PCI functions ``root`` (a ``<domain>``) passes through."""
    out: set[PciAddress] = set()
    sources = root.xpath(
        "devices/hostdev[@mode='subsystem' and @type='pci']/source/address"
        " | devices/interface[@type='hostdev']/source/address[not(@type) or @type='pci']"
    )
    assert isinstance(sources, list)  # noqa: S101 - an element-set XPath always yields a list
    for el in sources:
        if isinstance(el, etree._Element):
            try:
                out.add(_address(el))
            except InvalidPciAddress as e:
                raise InvalidDomainXml(f"domain {root.findtext('name')!r}: {e}") from e
    return out


def parse_domain_devices(xml: str) -> set[PciAddress]:
    """The PCI addresses domain ``xml`` passes through: ``<hostdev>`` sources and the sources of
    ``<interface type='hostdev'>``. A macvtap port's VF is not passed through (see
    :func:`parse_macvtap_netdevs`)."""
    return passthrough_addresses(parse_domain(xml))


def parse_macvtap_netdevs(xml: str) -> set[str]:
    """The host netdevs that domain ``xml``'s macvtap (``<interface type='direct'>``) ports sit on."""
    root = parse_domain(xml)
    return {el.get("dev", "") for el in root.iterfind("devices/interface[@type='direct']/source")} - {""}


def parse_domain_metadata(xml: str) -> DomainMetadata | None:
    """EPA's metadata in domain ``xml`` (server id and flavor), or None for a domain EPA did not write."""
    root = parse_domain(xml)
    server = root.find(f"metadata/{{{METADATA_NS}}}server")
    if server is None:
        return None
    flavor = server.find(f"{{{METADATA_NS}}}flavor")
    return DomainMetadata(server_id=server.get("id", ""), flavor="" if flavor is None else flavor.get("name", ""))
