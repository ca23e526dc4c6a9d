"""A server's domain through libvirt's ``test:///`` driver on the simulated NFV host: define, start,
read back, tear down (twice), and the errors libvirt gives on the way, as EPA errors."""

from __future__ import annotations

import threading
import uuid

import libvirt
import pytest

from epa.domain.address import PciAddress
from epa.domain.host import parse_cpulist
from epa.domain.port import VnicType
from epa.errors import LibvirtError, LibvirtUnsupported
from epa.libvirt_client import EVENT_LOOP_THREAD, LibvirtConnection, embedded_qemu_uri, ensure_event_loop
from epa.simulate.hosts import nfv_host
from epa.virt import (
    DomainMetadata,
    DomainSpec,
    HostdevSpec,
    InterfaceSpec,
    build_domain_xml,
    parse_domain_devices,
    parse_domain_metadata,
    parse_macvtap_netdevs,
)

A = PciAddress.parse
QAT_VFS = (A("0000:3d:01.1"), A("0000:3d:01.3"))
X710_VF = A("0000:18:0a.0")  # on vfio-pci: a direct port
IAVF_VF = A("0000:18:02.1")  # on iavf, netdev ens785f0v1: a macvtap port


def server_spec(name: str = "srv-1") -> DomainSpec:
    cells = nfv_host().numa_cells
    return DomainSpec(
        name=name,
        uuid=uuid.uuid5(uuid.NAMESPACE_URL, name),
        domain_type="test",
        vcpus=4,
        memory_mb=2048,
        host_nodes=(0,),
        cpus_by_node={0: 4},
        memory_by_node={0: 2048},
        host_cpus={n: parse_cpulist(cpus) for n, (cpus, _) in cells.items()},
        guest_numa=True,
        hostdevs=tuple(HostdevSpec(a) for a in QAT_VFS),
        interfaces=(
            InterfaceSpec(VnicType.DIRECT, X710_VF, mac="fa:16:3e:11:22:33", vlan=100),
            InterfaceSpec(VnicType.MACVTAP, IAVF_VF, mac="fa:16:3e:11:22:34", netdev="ens785f0v1"),
        ),
        metadata=DomainMetadata(server_id="0d1e2f00-0000-4000-8000-000000000001", flavor="nfv.small"),
    )


def test_define_start_read_back_and_tear_down(test_conn: LibvirtConnection) -> None:
    spec = server_spec()
    assert test_conn.define_domain(build_domain_xml(spec)) == str(spec.uuid)
    assert test_conn.domain_state("srv-1") == "shutoff"

    test_conn.start_domain("srv-1")
    test_conn.start_domain("srv-1")  # already running: left alone
    assert test_conn.domain_state("srv-1") == "running"
    assert test_conn.list_domains() == [("srv-1", str(spec.uuid), "running")]

    live = test_conn.domain_xml("srv-1")
    assert parse_domain_devices(live) == {*QAT_VFS, X710_VF}
    assert parse_macvtap_netdevs(live) == {"ens785f0v1"}
    assert parse_domain_metadata(live) == spec.metadata
    assert "<vcpupin vcpu='3' cpuset='0-19,40-59'/>" in live
    assert "<memory mode='strict' nodeset='0'/>" in live
    assert "<tag id='100'/>" in live

    test_conn.destroy_domain("srv-1")
    test_conn.destroy_domain("srv-1")  # not running: fine
    assert test_conn.domain_state("srv-1") == "shutoff"
    test_conn.undefine_domain("srv-1")
    test_conn.undefine_domain("srv-1")  # gone: fine
    test_conn.destroy_domain("srv-1")
    assert test_conn.domain_state("srv-1") is None
    assert test_conn.list_domains() == []


def test_undefining_a_running_domain_leaves_it_transient(test_conn: LibvirtConnection) -> None:
    test_conn.define_domain(build_domain_xml(server_spec()))
    test_conn.start_domain("srv-1")
    test_conn.undefine_domain("srv-1")
    assert test_conn.domain_state("srv-1") == "running"
    test_conn.destroy_domain("srv-1")
    assert test_conn.domain_state("srv-1") is None


def test_two_servers_list_sorted(test_conn: LibvirtConnection) -> None:
    for name in ("srv-b", "srv-a"):
        test_conn.define_domain(build_domain_xml(server_spec(name)))
    test_conn.start_domain("srv-b")
    assert [(n, s) for n, _, s in test_conn.list_domains()] == [("srv-a", "shutoff"), ("srv-b", "running")]


def test_inactive_xml_is_the_persistent_definition(test_conn: LibvirtConnection) -> None:
    test_conn.define_domain(build_domain_xml(server_spec()))
    test_conn.start_domain("srv-1")
    assert "id='" in test_conn.domain_xml("srv-1").split(">", 1)[0]
    assert "id='" not in test_conn.domain_xml("srv-1", inactive=True).split(">", 1)[0]


def test_detach_is_unsupported_by_the_test_driver_and_says_which_device(test_conn: LibvirtConnection) -> None:
    with pytest.raises(LibvirtUnsupported) as info:
        test_conn.node_device_detach(QAT_VFS[0])
    assert info.value.libvirt_code == libvirt.VIR_ERR_NO_SUPPORT
    assert "0000:3d:01.1" in str(info.value) and "pci_0000_3d_01_1" in str(info.value)
    with pytest.raises(LibvirtUnsupported, match="pci_0000_3d_01_1"):
        test_conn.node_device_reattach(QAT_VFS[0])
    # The older name-based calls answer the same way.
    with pytest.raises(LibvirtUnsupported, match="pci_0000_3d_01_1"):
        test_conn.detach_node_device("pci_0000_3d_01_1")


def test_detach_of_a_device_the_host_lacks(test_conn: LibvirtConnection) -> None:
    with pytest.raises(LibvirtError) as info:
        test_conn.node_device_detach(A("0000:99:00.0"))
    assert info.value.libvirt_code == libvirt.VIR_ERR_NO_NODE_DEVICE
    assert "pci_0000_99_00_0" in str(info.value)


@pytest.mark.parametrize(
    ("xml", "code", "detail"),
    [
        ("<domain><nam", libvirt.VIR_ERR_XML_DETAIL, "Couldn't find end of Start Tag nam"),
        ("<domain type='test'><name>x</name></domain>", libvirt.VIR_ERR_XML_ERROR, "an os <type> must be specified"),
    ],
)
def test_bad_xml_is_a_libvirt_error_with_libvirts_message(
    test_conn: LibvirtConnection, capfd: pytest.CaptureFixture[str], xml: str, code: int, detail: str
) -> None:
    with pytest.raises(LibvirtError) as info:
        test_conn.define_domain(xml)
    err = info.value
    assert type(err) is LibvirtError and not isinstance(err, libvirt.libvirtError)
    assert err.libvirt_code == code
    assert str(err).startswith("cannot define a domain on 'test://") and detail in str(err)
    assert err.code == "libvirt_error"
    # libvirt's default handler would have printed the error too; EPA's only raises it.
    assert capfd.readouterr().err == ""


def test_missing_domain_for_the_calls_that_need_one(test_conn: LibvirtConnection) -> None:
    for call in (test_conn.start_domain, test_conn.domain_xml):
        with pytest.raises(LibvirtError) as info:
            call("nope")
        assert info.value.libvirt_code == libvirt.VIR_ERR_NO_DOMAIN
        assert "domain 'nope'" in str(info.value)


def test_closed_connection_is_an_epa_error(test_conn: LibvirtConnection) -> None:
    test_conn.close()
    with pytest.raises(LibvirtError, match="is closed"):
        test_conn.list_domains()


def test_event_loop_runs_once_per_process() -> None:
    ensure_event_loop()
    ensure_event_loop()
    loops = [t for t in threading.enumerate() if t.name == EVENT_LOOP_THREAD]
    assert len(loops) == 1 and loops[0].daemon and loops[0].is_alive()


def test_embedded_uri_quotes_the_root() -> None:
    assert embedded_qemu_uri("/tmp/a b&c") == "qemu:///embed?root=/tmp/a%20b%26c"
