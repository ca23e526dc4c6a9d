"""Reading what a domain uses from domain XML written by anyone: libvirt, an operator, or EPA."""

from __future__ import annotations

import pytest

from epa.domain.address import PciAddress
from epa.virt import InvalidDomainXml, parse_domain_devices, parse_domain_metadata, parse_macvtap_netdevs

A = PciAddress.parse

# Shaped like `virsh dumpxml` of a running guest: aliases, guest-side addresses, a network-pool port.
LIVE = """<domain type='kvm' id='7'>
  <name>other</name>
  <devices>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:6d:90:02'/>
      <driver name='vfio'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x18' slot='0x02' function='0x5'/>
      </source>
      <alias name='hostdev0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </interface>
    <interface type='network'>
      <source network='vf-pool' portid='0b6c3c2e-52a5-4fd1-8d3c-7a4e4e2a0b11'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/>
    </interface>
    <interface type='direct'>
      <source dev='ens785f0v3' mode='passthrough'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='no'>
      <driver name='vfio'/>
      <source>
        <address domain='0x0000' bus='0xaf' slot='0x00' function='0x0'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='usb' managed='yes'>
      <source><vendor id='0x1234'/><product id='0xbeef'/></source>
    </hostdev>
  </devices>
</domain>
"""


def test_live_xml_gives_only_host_pci_sources() -> None:
    # Guest-side <address> elements and USB or network-pool devices are not host PCI functions.
    assert parse_domain_devices(LIVE) == {A("0000:18:02.5"), A("0000:af:00.0")}
    assert parse_macvtap_netdevs(LIVE) == {"ens785f0v3"}
    assert parse_domain_metadata(LIVE) is None


@pytest.mark.parametrize(
    ("attrs", "want"),
    [
        ("bus='59' slot='2' function='1'", "0000:3b:02.1"),  # decimal, domain left out (libvirt: 0)
        ("domain='0' bus='073' slot='02' function='01'", "0000:3b:02.1"),  # strtoul base 0: octal
        ("domain='0x0001' bus='0X3B' slot='0x1f' function='0x7'", "0001:3b:1f.7"),
    ],
)
def test_addresses_are_read_the_way_libvirt_reads_them(attrs: str, want: str) -> None:
    hostdev = f"<hostdev mode='subsystem' type='pci'><source><address {attrs}/></source></hostdev>"
    xml = f"<domain><devices>{hostdev}</devices></domain>"
    assert parse_domain_devices(xml) == {A(want)}


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domain><devices>", "domain XML does not parse"),
        ("<network><name>x</name></network>", "the root element is <network>, not <domain>"),
        (
            "<domain><name>d</name><devices><hostdev mode='subsystem' type='pci'><source>"
            "<address bus='0x3b' slot='zz' function='0'/></source></hostdev></devices></domain>",
            "domain 'd': PCI address: slot ('zz') is not a number",
        ),
        (
            "<domain><name>d</name><devices><hostdev mode='subsystem' type='pci'><source>"
            "<address bus='0x3b' slot='0x20' function='0'/></source></hostdev></devices></domain>",
            "domain 'd': PCI address slot 32 is not in 0..0x1f",
        ),
    ],
)
def test_bad_xml_names_what_is_wrong(xml: str, message: str) -> None:
    with pytest.raises(InvalidDomainXml) as info:
        parse_domain_devices(xml)
    assert message in str(info.value)


def test_entities_are_not_expanded() -> None:
    xml = "<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><domain><name>&x;</name><devices/></domain>"
    assert parse_domain_devices(xml) == set()
