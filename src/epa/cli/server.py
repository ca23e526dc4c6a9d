"""``epa server``: create servers on hosts that have their devices, see where they went, delete them."""

from __future__ import annotations

from typing import Any

import click

from epa.cli.client_settings import with_client
from epa.cli.tables import echo_json, key_values, render
from epa.client import ApiClient
from epa.domain.port import Port
from epa.errors import EpaError

json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
SERVER_HEADERS = ("ID", "NAME", "STATUS", "HOST", "NODES", "DEVICES", "REASON")


class ServerFailed(EpaError):
    code = "server_error"


def _ports(texts: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for text in texts:
        port = Port.parse(text)
        body = port.to_json()
        out.append({k: v for k, v in body.items() if v is not None})
    return out


def server_row(s: dict[str, Any]) -> list[str]:
    return [
        str(s.get("id", ""))[:8],
        str(s.get("name", "")),
        str(s.get("status", "")),
        str(s.get("host") or "-"),
        ",".join(str(n) for n in s.get("host_nodes") or []) or "-",
        ",".join(d.get("address", "") for d in s.get("devices") or []) or "-",
        str(s.get("status_reason") or ""),
    ]


def explain_text(answer: dict[str, Any]) -> str:
    lines = []
    candidates = answer.get("candidates") or []
    if candidates:
        lines.append("candidates (best first):")
        for c in candidates:
            devices = "; ".join(f"{d['request']}: {','.join(d['addresses'])}" for d in c.get("devices") or [])
            nodes = ",".join(str(n) for n in c.get("host_nodes") or [])
            lines.append(f"  {c['host']}  score {c['score']:.3f}  NUMA {nodes}  {devices}")
    else:
        lines.append("no host can take this server")
    rejected = answer.get("rejected") or []
    if rejected:
        lines.append("rejected:")
        lines.extend(f"  {r['host']}: {r['reason']}" for r in rejected)
    return "\n".join(lines)


@click.group()
def server() -> None:
    """Servers: a flavor and ports, placed on a host with exactly those devices."""


@server.command("create")
@click.argument("name")
@click.option("--flavor", required=True, help="Flavor name.")
@click.option(
    "--port",
    "ports",
    multiple=True,
    metavar="physnet=NET,vnic_type=direct|direct-physical|macvtap[,...]",
    help="A network port; repeatable. Extra keys: trusted=true, vlan=N, mac=M.",
)
@click.option("--dry-run", is_flag=True, help="Claim nothing: show where it would go and why other hosts would not.")
@json_option
@with_client
def create_server(api: ApiClient, name: str, flavor: str, ports: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Create a server: the scheduler picks a host and devices and claims them atomically."""
    port_bodies = _ports(ports)
    if dry_run:
        answer = api.explain(flavor, port_bodies)
        if as_json:
            echo_json(answer)
        else:
            click.echo(explain_text(answer))
        return
    created = api.create_server(name, flavor, port_bodies)
    if as_json:
        echo_json(created)
    elif created.get("status") != "error":
        click.echo(render(SERVER_HEADERS, [server_row(created)]))
    if created.get("status") == "error":
        raise ServerFailed(f"server {name} ({created.get('id')}): {created.get('status_reason')}")


@server.command("list")
@click.option("--host", default=None)
@click.option("--status", default=None)
@json_option
@with_client
def list_servers(api: ApiClient, host: str | None, status: str | None, as_json: bool) -> None:
    """List servers."""
    found = api.list_servers(host=host, status=status)
    if as_json:
        echo_json(found)
    else:
        click.echo(render(SERVER_HEADERS, [server_row(s) for s in found]))


@server.command("show")
@click.argument("server_id")
@json_option
@with_client
def show_server(api: ApiClient, server_id: str, as_json: bool) -> None:
    """Show one server with its host, NUMA nodes and claimed devices."""
    s = api.get_server(server_id)
    if as_json:
        echo_json(s)
        return
    devices = ", ".join(f"{d.get('address')} ({d.get('request_label')})" for d in s.get("devices") or [])
    click.echo(
        key_values(
            [
                ("id", s.get("id")),
                ("name", s.get("name")),
                ("status", s.get("status")),
                ("reason", s.get("status_reason")),
                ("host", s.get("host")),
                ("host NUMA nodes", ",".join(str(n) for n in s.get("host_nodes") or [])),
                ("flavor", (s.get("flavor") or {}).get("name")),
                ("devices", devices),
            ]
        )
    )


@server.command("delete")
@click.argument("server_id")
@with_client
def delete_server(api: ApiClient, server_id: str) -> None:
    """Delete a server and release its devices."""
    api.delete_server(server_id)
    click.echo(f"deleted server {server_id}")
