"""The libvirt wrapper: libvirt's errors come out as EPA's, recognised by code, and libvirt prints
nothing on its own."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

from epa.errors import LibvirtError, LibvirtUnsupported
from epa.libvirt_client import open_connection
from epa.simulate.hosts import no_numa_host
from epa.simulate.libvirt_node import write_node_xml


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return write_node_xml(no_numa_host(), tmp_path / "node.xml")


def test_a_uri_that_cannot_be_opened_is_a_libvirt_error_naming_it() -> None:
    bad = "test:///nonexistent/file.xml"
    with pytest.raises(LibvirtError) as info:
        open_connection(bad)
    assert type(info.value) is LibvirtError
    assert bad in str(info.value)
    assert "/nonexistent/file.xml" in str(info.value)
    assert info.value.code == "libvirt_error"
    assert isinstance(info.value.libvirt_code, int)
    assert isinstance(info.value.__cause__, libvirt.libvirtError)


def test_node_device_xml_lists_pci_and_net_devices_by_name(uri: str) -> None:
    with open_connection(uri) as conn:
        pci = conn.node_device_xml("pci")
        net = conn.node_device_xml("net")
    names = [name for name, _ in pci]
    assert names == sorted(names)
    assert "pci_0000_01_00_0" in names
    assert all(name.startswith("pci_") for name in names)
    assert len(pci) == len(no_numa_host().functions)
    assert [name for name, _ in net] == [
        "net_eno1_3c_fd_fe_00_00_01",
        "net_eno1v0_52_54_00_00_00_02",
        "net_eno1v1_52_54_00_00_00_03",
        "net_eno1v2_52_54_00_00_00_04",
        "net_eno1v3_52_54_00_00_00_05",
        "net_eno2_3c_fd_fe_00_00_06",
    ]
    xml = dict(pci)["pci_0000_01_00_0"]
    assert xml.startswith("<device>")
    assert "<name>pci_0000_01_00_0</name>" in xml


def test_an_unknown_capability_is_refused(uri: str) -> None:
    with open_connection(uri) as conn, pytest.raises(ValueError, match="'usb'"):
        conn.node_device_xml("usb")  # type: ignore[arg-type]


def test_detach_on_the_test_driver_is_unsupported(uri: str, capfd: pytest.CaptureFixture[str]) -> None:
    with open_connection(uri) as conn:
        with pytest.raises(LibvirtUnsupported) as info:
            conn.detach_node_device("pci_0000_01_02_0")
        assert info.value.libvirt_code == libvirt.VIR_ERR_NO_SUPPORT
        assert info.value.code == "libvirt_unsupported"
        assert "pci_0000_01_02_0" in str(info.value)
        assert uri in str(info.value)
        with pytest.raises(LibvirtUnsupported):
            conn.reattach_node_device("pci_0000_01_02_0")
    # The quiet error handler: libvirt itself printed nothing.
    assert capfd.readouterr().err == ""


def test_an_unknown_node_device_keeps_libvirts_error_code(uri: str) -> None:
    with open_connection(uri) as conn, pytest.raises(LibvirtError) as info:
        conn.detach_node_device("pci_0000_99_00_0")
    assert type(info.value) is LibvirtError
    assert info.value.libvirt_code == libvirt.VIR_ERR_NO_NODE_DEVICE
    assert "pci_0000_99_00_0" in str(info.value)


def test_a_closed_connection_refuses_calls(uri: str) -> None:
    conn = open_connection(uri)
    conn.close()
    conn.close()  # closing twice is harmless
    with pytest.raises(LibvirtError, match="closed"):
        conn.node_device_xml("pci")
