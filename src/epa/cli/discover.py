"""``epa discover``: list this host's PCI functions and what the device_spec makes of them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from epa.cli.device_table import render_table
from epa.config import load_config, parse_device_spec_args
from epa.discovery.libvirt_nodedev import scan_libvirt
from epa.discovery.pci_ids import load_pci_ids
from epa.discovery.sysfs import scan_sysfs
from epa.domain.device_spec import ClassifiedDevice, DeviceSpec, classify
from epa.errors import InvalidInput


@click.command()
@click.option(
    "--sysfs-root",
    type=click.Path(path_type=Path),
    default=None,
    help="Read a /sys-shaped tree here (default: /sys).",
)
@click.option(
    "--libvirt",
    "libvirt_uri",
    metavar="URI",
    default=None,
    help="Read libvirt's node devices instead of sysfs (e.g. qemu:///system).",
)
@click.option(
    "--device-spec",
    "device_specs",
    multiple=True,
    metavar="JSON|@FILE",
    help="A Nova [pci] device_spec entry; repeatable; added after the config file's.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="An EPA TOML config or a nova.conf; its [pci] device_spec entries apply.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object per function.")
def discover(
    sysfs_root: Path | None,
    libvirt_uri: str | None,
    device_specs: tuple[str, ...],
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Discover the PCI functions of this host (works offline, needs no server)."""
    if sysfs_root is not None and libvirt_uri is not None:
        raise InvalidInput("--sysfs-root and --libvirt are alternatives; give one of them")
    specs: list[DeviceSpec] = []
    if config_path is not None:
        config = load_config(config_path)
        specs.extend(config.device_specs)
        for warning in config.warnings:
            click.echo(f"warning: {warning}", err=True)
    specs.extend(parse_device_spec_args(device_specs, first_index=len(specs)))
    names = load_pci_ids()
    if libvirt_uri is not None:
        result = scan_libvirt(libvirt_uri, names)
    else:
        result = scan_sysfs(sysfs_root or Path("/sys"), names)
    classified, spec_warnings = classify(specs, result.devices)
    for warning in (*result.warnings, *spec_warnings):
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps([_json(c) for c in classified], indent=2))
    else:
        click.echo(render_table(classified, source=result.source))


def _json(c: ClassifiedDevice) -> dict[str, object]:
    out: dict[str, object] = c.device.to_json()
    out["assignable"] = c.assignable
    out["tags"] = dict(c.tags)
    return out
