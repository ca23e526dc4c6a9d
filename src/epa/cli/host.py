"""``epa host``: register hosts, hand out their agent tokens, and see what each reported."""

from __future__ import annotations

import click

from epa.cli.client_settings import with_client
from epa.cli.tables import HOST_HEADERS, echo_json, host_details, host_row, render
from epa.client import ApiClient

json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


@click.group()
def host() -> None:
    """Hosts (hypervisors) and their agent tokens."""


@host.command("list")
@json_option
@with_client
def list_hosts(api: ApiClient, as_json: bool) -> None:
    """List the hosts, sorted by name."""
    hosts = api.list_hosts()
    if as_json:
        echo_json(hosts)
    else:
        click.echo(render(HOST_HEADERS, [host_row(h) for h in hosts]))


@host.command("show")
@click.argument("name")
@json_option
@with_client
def show_host(api: ApiClient, name: str, as_json: bool) -> None:
    """Show one host: generation, last report, NUMA cells and device counts."""
    h = api.get_host(name)
    if as_json:
        echo_json(h)
    else:
        click.echo(host_details(h))


@host.command("create")
@click.argument("name")
@json_option
@with_client
def create_host(api: ApiClient, name: str, as_json: bool) -> None:
    """Register a host and print its agent token (shown this once)."""
    answer = api.create_host(name)
    if as_json:
        echo_json(answer)
    else:
        click.echo(f"created host {name}")
        click.echo(f"agent token: {answer.get('agent_token')}")


@host.command("token")
@click.argument("name")
@json_option
@with_client
def rotate_token(api: ApiClient, name: str, as_json: bool) -> None:
    """Give the host's agent a new token; the old one stops working."""
    token = api.rotate_token(name)
    if as_json:
        echo_json({"agent_token": token})
    else:
        click.echo(f"new agent token for {name}: {token}")


def _set_enabled(api: ApiClient, name: str, enabled: bool, as_json: bool) -> None:
    h = api.set_host_enabled(name, enabled)
    if as_json:
        echo_json(h)
    else:
        click.echo(f"host {name} {'enabled' if enabled else 'disabled'}")


@host.command("enable")
@click.argument("name")
@json_option
@with_client
def enable_host(api: ApiClient, name: str, as_json: bool) -> None:
    """Let the scheduler place servers on the host again."""
    _set_enabled(api, name, True, as_json)


@host.command("disable")
@click.argument("name")
@json_option
@with_client
def disable_host(api: ApiClient, name: str, as_json: bool) -> None:
    """Keep the scheduler from placing new servers on the host."""
    _set_enabled(api, name, False, as_json)


@host.command("delete")
@click.argument("name")
@with_client
def delete_host(api: ApiClient, name: str) -> None:
    """Forget a host and its devices (refused while any device is in use)."""
    api.delete_host(name)
    click.echo(f"deleted host {name}")
