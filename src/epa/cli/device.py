"""``epa device``: the devices every agent reported, with their status and owner."""

from __future__ import annotations

import click

from epa.cli.client_settings import with_client
from epa.cli.tables import DEVICE_HEADERS, device_row, echo_json, key_values, render
from epa.client import ApiClient
from epa.domain.device import DevType
from epa.domain.status import DeviceStatus
from epa.errors import InvalidInput

json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


def dev_type_value(text: str) -> str:
    """``type-VF``, ``VF`` or ``vf`` all mean ``type-VF``."""
    lowered = text.strip().lower().removeprefix("type-")
    for t in DevType:
        if t.value.lower().removeprefix("type-") == lowered:
            return t.value
    raise InvalidInput(f"--type ({text!r}) must be one of {', '.join(t.value for t in DevType)}")


@click.group()
def device() -> None:
    """PCI devices of all hosts, as their agents reported them."""


@device.command("list")
@click.option("--host", "host_name", default=None, help="Only this host's devices.")
@click.option("--status", type=click.Choice([s.value for s in DeviceStatus]), default=None)
@click.option("--type", "dev_type", default=None, help="type-PCI, type-PF or type-VF (or pci, pf, vf).")
@click.option("--assignable/--not-assignable", default=None, help="Only (not) assignable devices.")
@json_option
@with_client
def list_devices(
    api: ApiClient,
    host_name: str | None,
    status: str | None,
    dev_type: str | None,
    assignable: bool | None,
    as_json: bool,
) -> None:
    """List devices ordered by host and address (every page is fetched)."""
    devices = api.list_devices(
        host=host_name,
        status=status,
        dev_type=dev_type_value(dev_type) if dev_type is not None else None,
        assignable=assignable,
    )
    if as_json:
        echo_json(devices)
        return
    click.echo(render(DEVICE_HEADERS, [device_row(d) for d in devices]))
    click.echo(f"\n{len(devices)} devices")


@device.command("show")
@click.argument("host_name", metavar="HOST")
@click.argument("address")
@json_option
@with_client
def show_device(api: ApiClient, host_name: str, address: str, as_json: bool) -> None:
    """Show one device of HOST by its PCI address."""
    d = api.get_device(host_name, address)
    if as_json:
        echo_json(d)
    else:
        click.echo(key_values(sorted(d.items())))
