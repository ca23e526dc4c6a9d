"""``epa flavor``: vCPUs, memory, NUMA needs and PCI requests of a server size."""

from __future__ import annotations

from typing import Any

import click

from epa.cli.client_settings import with_client
from epa.cli.tables import FLAVOR_HEADERS, echo_json, flavor_row, key_values, render
from epa.client import ApiClient
from epa.domain.alias import NumaPolicy

json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


@click.group()
def flavor() -> None:
    """Flavors: what a server asks for."""


@flavor.command("create")
@click.argument("name")
@click.option("--vcpus", type=click.IntRange(min=1), required=True)
@click.option("--ram", "memory_mb", type=click.IntRange(min=1), required=True, metavar="MB")
@click.option("--pci", default=None, metavar="'ALIAS:N, ...'", help="pci_passthrough:alias, e.g. 'qat:2, t4:1'.")
@click.option("--numa-policy", type=click.Choice([p.value for p in NumaPolicy]), default=None)
@click.option("--numa-nodes", type=click.IntRange(min=1), default=None)
@click.option(
    "--disk",
    "disk_gb",
    type=click.IntRange(min=1),
    default=None,
    metavar="GB",
    help="Root disk size in GiB (at least the image's virtual size); default: the image's.",
)
@click.option("--image", default=None, metavar="NAME", help="What its servers boot when a create names no image.")
@click.option(
    "--pci-group",
    default=None,
    metavar="'RELATION(MEMBER, ...); ...'",
    help="Where its devices sit in the PCIe tree, e.g. 'same_switch(gpu, port:0); distinct_pf(port:0, port:1)'.",
)
@json_option
@with_client
def create_flavor(
    api: ApiClient,
    name: str,
    vcpus: int,
    memory_mb: int,
    pci: str | None,
    numa_policy: str | None,
    numa_nodes: int | None,
    disk_gb: int | None,
    image: str | None,
    pci_group: str | None,
    as_json: bool,
) -> None:
    """Create a flavor; the server checks the PCI request syntax and that its aliases exist."""
    body: dict[str, Any] = {"name": name, "vcpus": vcpus, "memory_mb": memory_mb}
    if pci is not None:
        body["pci_passthrough:alias"] = pci
    if numa_policy is not None:
        body["numa_policy"] = numa_policy
    if numa_nodes is not None:
        body["numa_nodes"] = numa_nodes
    if disk_gb is not None:
        body["disk_gb"] = disk_gb
    if image is not None:
        body["image"] = image
    if pci_group is not None:
        body["pci_group"] = pci_group
    created = api.create_flavor(body)
    if as_json:
        echo_json(created)
    else:
        click.echo(f"created flavor {created.get('name')}")


@flavor.command("list")
@json_option
@with_client
def list_flavors(api: ApiClient, as_json: bool) -> None:
    """List the flavors."""
    flavors = api.list_flavors()
    if as_json:
        echo_json(flavors)
    else:
        click.echo(render(FLAVOR_HEADERS, [flavor_row(f) for f in flavors]))


@flavor.command("show")
@click.argument("name")
@json_option
@with_client
def show_flavor(api: ApiClient, name: str, as_json: bool) -> None:
    """Show one flavor and its parsed PCI requests."""
    f = api.get_flavor(name)
    if as_json:
        echo_json(f)
        return
    requests = ", ".join(f"{r.get('alias')}×{r.get('count')}" for r in f.get("pci_requests") or [])
    click.echo(
        key_values(
            [
                ("name", f.get("name")),
                ("vcpus", f.get("vcpus")),
                ("memory MB", f.get("memory_mb")),
                ("pci", f.get("pci_passthrough:alias")),
                ("pci requests", requests),
                ("numa policy", f.get("numa_policy")),
                ("numa nodes", f.get("numa_nodes")),
                ("disk GB", f.get("disk_gb") or "the image's size"),
                ("image", f.get("image") or "none (a server names its own)"),
                ("pci group", f.get("pci_group") or "none"),
            ]
        )
    )


@flavor.command("delete")
@click.argument("name")
@with_client
def delete_flavor(api: ApiClient, name: str) -> None:
    """Delete a flavor."""
    api.delete_flavor(name)
    click.echo(f"deleted flavor {name}")
