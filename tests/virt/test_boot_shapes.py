"""The boot parts of a domain (a qcow2 root disk, the NoCloud seed, a kernel booted directly, the serial
console logged to a file) in the shapes libvirt's own schema accepts, and refused when malformed."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from lxml import etree

from epa.virt import DiskSpec, DomainSpec, InvalidDomainSpec, KernelSpec, build_domain_xml


def _spec(**boot: object) -> DomainSpec:
    return DomainSpec(name="vm", uuid=uuid.uuid4(), domain_type="qemu", vcpus=1, memory_mb=128, **boot)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "boot",
    [
        {"disk": DiskSpec("/var/lib/epa/disks/a.qcow2"), "seed": "/var/lib/epa/a.seed.iso", "console_log": "/l/a.log"},
        {"kernel": KernelSpec("/c/vmlinuz", "/c/initrd", "console=ttyS0 quiet"), "seed": "/s.iso"},
        {"kernel": KernelSpec("/c/vmlinuz", "/c/initrd")},
    ],
)
def test_boot_shapes_validate(virt_xml_validate: Callable[[str], None], boot: dict[str, object]) -> None:
    xml = build_domain_xml(_spec(**boot))
    virt_xml_validate(xml)
    tree = etree.fromstring(xml.encode())
    kernel = boot.get("kernel")
    if isinstance(kernel, KernelSpec):
        assert tree.findtext("os/kernel") == kernel.kernel and tree.findtext("os/initrd") == kernel.initrd
    if "seed" in boot:
        (seed,) = tree.xpath("devices/disk[target/@dev='vdb']")
        assert (
            seed is not None and seed.find("readonly") is not None and seed.find("source").get("file") == boot["seed"]
        )


@pytest.mark.parametrize(
    ("boot", "words"),
    [
        ({"seed": "relative.iso"}, "seed"),
        ({"console_log": "/a\nb"}, "console_log"),
        ({"kernel": "/boot/vmlinuz"}, "KernelSpec"),
    ],
)
def test_bad_boot_parts_are_refused(boot: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidDomainSpec, match=words):
        _spec(**boot)


def test_kernel_cmdline_must_be_printable() -> None:
    with pytest.raises(InvalidDomainSpec, match="cmdline"):
        KernelSpec("/k", "/i", "quiet\x1b[2J")
