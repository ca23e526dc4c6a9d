"""Fixtures for the virt tests: libvirt's own domain schema (through ``virt-xml-validate`` and through
lxml's RelaxNG, which reads the same ``domain.rng``) and a ``test:///`` connection to a simulated host."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from epa.libvirt_client import LibvirtConnection, open_connection
from epa.simulate.hosts import nfv_host
from epa.simulate.libvirt_node import write_node_xml

SCHEMA = Path("/usr/share/libvirt/schemas/domain.rng")
MISSING_VALIDATOR = "virt-xml-validate is missing: install the Debian packages libvirt-clients and libxml2-utils"


@pytest.fixture(scope="session")
def virt_xml_validate() -> Callable[[str], None]:
    """Check a document with ``virt-xml-validate FILE domain``; fails the test with its output."""
    tool = shutil.which("virt-xml-validate")
    if tool is None or shutil.which("xmllint") is None:
        pytest.fail(MISSING_VALIDATOR)

    def validate(xml: str) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".xml", encoding="utf-8") as f:
            f.write(xml)
            f.flush()
            done = subprocess.run([tool, f.name, "domain"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"virt-xml-validate rejects the document:\n{done.stderr}\n{xml}"

    return validate


@pytest.fixture(scope="session")
def relaxng() -> Callable[[str], None]:
    """The same check in-process: fast enough for many hypothesis examples."""
    if not SCHEMA.is_file():
        pytest.fail(f"libvirt's domain schema {SCHEMA} is missing: install the Debian package libvirt0")
    schema = etree.RelaxNG(etree.parse(str(SCHEMA)))

    def validate(xml: str) -> None:
        doc = etree.fromstring(xml.encode())
        assert schema.validate(doc), f"domain.rng rejects the document: {schema.error_log}\n{xml}"

    return validate


@pytest.fixture
def nfv_uri(tmp_path: Path) -> str:
    return write_node_xml(nfv_host(), tmp_path / "nfv-node.xml")


@pytest.fixture
def test_conn(nfv_uri: str) -> Iterator[LibvirtConnection]:
    with open_connection(nfv_uri) as conn:
        yield conn
