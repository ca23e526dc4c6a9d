"""Boot the builder's XML for real: a tiny KVM guest under ``qemu:///embed`` (libvirt's QEMU driver
inside this process, its state in a temporary root), pinned to host NUMA node 0. No devices are passed
through: that needs an IOMMU and VFIO, which a CI kernel does not give.

The prerequisites (KVM, QEMU, the ``libvirt-qemu`` account the Debian driver looks up) are checked
first, and a missing one fails the test with what to install: this test is not allowed to skip."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import uuid
from pathlib import Path

import pytest

from epa.domain.host import parse_cpulist
from epa.errors import LibvirtError
from epa.libvirt_client import open_embedded_qemu
from epa.virt import DomainMetadata, DomainSpec, build_domain_xml, parse_domain_devices, parse_domain_metadata

QEMU = "qemu-system-x86_64"
NODE0_CPUS = Path("/sys/devices/system/node/node0/cpulist")
# Debian builds the QEMU driver with this user and group and looks both up when it starts, before it
# reads qemu.conf (libvirt-daemon-system creates them on a full install).
DRIVER_ACCOUNT = "libvirt-qemu"
# Run QEMU as ourselves (root in CI) with no sVirt labelling, and write its stdout/stderr to a file
# rather than through virtlogd, which is a separate daemon nobody started.
QEMU_CONF = 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\nstdio_handler = "file"\n'


def _prerequisites() -> str:
    """The QEMU binary; fails the test naming whatever is missing."""
    missing: list[str] = []
    if not os.path.exists("/dev/kvm"):
        missing.append("/dev/kvm does not exist (KVM is not available: enable virtualisation / nested KVM)")
    elif not os.access("/dev/kvm", os.R_OK | os.W_OK):
        missing.append("/dev/kvm is not readable and writable by this user")
    qemu = shutil.which(QEMU)
    if qemu is None:
        missing.append(f"{QEMU} is not on PATH (Debian package qemu-system-x86)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(DRIVER_ACCOUNT)
            grp.getgrnam(DRIVER_ACCOUNT)
        except KeyError:
            missing.append(
                f"the user and group {DRIVER_ACCOUNT!r} do not exist (libvirt's QEMU driver refuses to start): "
                f"groupadd --system {DRIVER_ACCOUNT} && useradd --system --no-create-home -g {DRIVER_ACCOUNT} "
                f"{DRIVER_ACCOUNT}"
            )
    if missing or qemu is None:
        pytest.fail("cannot boot a guest under qemu:///embed: " + "; ".join(missing))
    return qemu


def _node0_cpus() -> tuple[int, ...]:
    # A kernel without NUMA has no node directories; CPU 0 is then the only safe choice.
    if NODE0_CPUS.is_file():
        return parse_cpulist(NODE0_CPUS.read_text())
    return (0,)


@pytest.mark.slow
def test_tiny_guest_boots_pinned_to_node_0(tmp_path_factory: pytest.TempPathFactory) -> None:
    qemu = _prerequisites()
    # libvirt keeps one embedded root per process for the life of the process; this is the only test
    # that opens one. Unix socket paths (the QEMU monitor's) must stay short: keep the root shallow.
    root = tmp_path_factory.mktemp("embed")
    (root / "etc").mkdir()
    (root / "etc" / "qemu.conf").write_text(QEMU_CONF, encoding="utf-8")
    spec = DomainSpec(
        name="epa-boot",
        uuid=uuid.uuid4(),
        domain_type="kvm",
        vcpus=1,
        memory_mb=64,
        host_nodes=(0,),
        cpus_by_node={0: 1},
        memory_by_node={0: 64},
        host_cpus={0: _node0_cpus()},
        guest_numa=True,
        emulator=qemu,
        metadata=DomainMetadata(server_id="boot-test", flavor="tiny"),
    )
    try:
        conn = open_embedded_qemu(str(root))
    except LibvirtError as e:
        pytest.fail(f"cannot open qemu:///embed (is libvirt-daemon-driver-qemu installed?): {e}")
    with conn:
        try:
            assert conn.define_domain(build_domain_xml(spec)) == str(spec.uuid)
            conn.start_domain("epa-boot")
            assert conn.domain_state("epa-boot") == "running"
            live = conn.domain_xml("epa-boot")
            assert "<memory mode='strict' nodeset='0'/>" in live or "<memnode cellid='0' mode='strict'" in live
            assert "<vcpupin vcpu='0'" in live
            assert parse_domain_devices(live) == set()
            assert parse_domain_metadata(live) == spec.metadata
            assert [(n, s) for n, _, s in conn.list_domains()] == [("epa-boot", "running")]
        finally:
            conn.destroy_domain("epa-boot")
            conn.undefine_domain("epa-boot")
        assert conn.domain_state("epa-boot") is None
