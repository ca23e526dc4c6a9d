"""``epa server``: create servers on hosts that have their devices, see where they went, delete them."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import click

from epa.cli.client_settings import with_client
from epa.cli.tables import echo_json, key_values, render
from epa.client import ApiClient
from epa.domain.cloud_init import MAX_SSH_KEY, MAX_SSH_KEYS, MAX_USER_DATA
from epa.domain.port import Port
from epa.errors import EpaError, InvalidInput, ServiceUnavailable
from epa.wire.server import PortIn

json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
SERVER_HEADERS = ("ID", "NAME", "STATUS", "HOST", "NODES", "DEVICES", "REASON")


class ServerFailed(EpaError):
    code = "server_error"


def _ports(texts: tuple[str, ...]) -> list[dict[str, Any]]:
    return [PortIn.of(Port.parse(text)).model_dump(exclude_none=True) for text in texts]


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
@click.option("--image", default=None, help="The image it boots (epa image list).")
@click.option(
    "--ssh-key",
    "ssh_keys",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file of OpenSSH public keys for the guest (cloud-init); repeatable.",
)
@click.option(
    "--user-data",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A cloud-init user-data file (at most 64 KiB).",
)
@click.option("--dry-run", is_flag=True, help="Claim nothing: show where it would go and why other hosts would not.")
@click.option("--wait", is_flag=True, help="Wait until the host's agent has it active (or it failed).")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True, help="Seconds, with --wait.")
@json_option
@with_client
def create_server(
    api: ApiClient,
    name: str,
    flavor: str,
    ports: tuple[str, ...],
    image: str | None,
    ssh_keys: tuple[Path, ...],
    user_data: Path | None,
    dry_run: bool,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Create a server: the scheduler picks a host and devices and claims them atomically."""
    port_bodies = _ports(ports)
    boot = _boot(image, ssh_keys, user_data)
    if dry_run:
        answer = api.explain(flavor, port_bodies)
        if as_json:
            echo_json(answer)
        else:
            click.echo(explain_text(answer))
        return
    created = _create_retrying(api, name, flavor, port_bodies, boot)
    if wait and created.get("status") != "error":
        created = wait_for_status(api, str(created["id"]), {"active", "error"}, timeout, quiet=as_json)
    if as_json:
        echo_json(created)
    elif created.get("status") != "error":
        click.echo(render(SERVER_HEADERS, [server_row(created)]))
    if created.get("status") == "error":
        raise ServerFailed(f"server {name} ({created.get('id')}): {created.get('status_reason')}")


CREATE_ATTEMPTS = 4


def _read_text(path: Path, option: str, limit: int) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"{option} ({str(path)!r}) cannot be read: {e.strerror or e}") from e
    if len(data) > limit:
        raise InvalidInput(f"{option} ({str(path)!r}) has {len(data)} bytes, at most {limit}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{option} ({str(path)!r}) is not UTF-8 text: {e}") from e


def _boot(image: str | None, ssh_keys: tuple[Path, ...], user_data: Path | None) -> dict[str, Any] | None:
    if image is None:
        if ssh_keys or user_data is not None:
            raise InvalidInput("--ssh-key and --user-data need --image")
        return None
    keys = [
        line.strip()
        for path in ssh_keys
        for line in _read_text(path, "--ssh-key", MAX_SSH_KEY * MAX_SSH_KEYS).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    boot: dict[str, Any] = {"image": image, "ssh_keys": keys}
    if user_data is not None:
        boot["user_data"] = _read_text(user_data, "--user-data", MAX_USER_DATA)
    return boot


def _create_retrying(
    api: ApiClient, name: str, flavor: str, ports: list[dict[str, Any]], boot: dict[str, Any] | None = None
) -> Any:
    """Create with an Idempotency-Key, and send it again with that key while the server cannot be
    reached (or answers 5xx): a create whose answer was lost is found, never made twice."""
    key = str(uuid.uuid4())
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            return api.create_server(name, flavor, ports, idempotency_key=key, boot=boot)
        except ServiceUnavailable as e:
            if attempt == CREATE_ATTEMPTS:
                raise
            delay = 0.5 * 2**attempt
            click.echo(f"epa: {e}; sending the create again in {delay:g}s (Idempotency-Key {key})", err=True)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def wait_for_status(api: ApiClient, server_id: str, done: set[str], timeout: float, quiet: bool = False) -> Any:
    """Poll the server until its status is in ``done``, showing each change on stderr."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        current = api.get_server(server_id)
        status = current.get("status")
        if status != last and not quiet:
            click.echo(f"  {server_id[:8]}: {status}", err=True)
            last = status
        if status in done:
            return current
        if time.monotonic() >= deadline:
            raise ServerFailed(f"server {server_id}: still {status} after {timeout:.0f} s")
        time.sleep(0.5)


@server.command("stop")
@click.argument("server_id")
@with_client
def stop_server(api: ApiClient, server_id: str) -> None:
    """Stop a server (its host's agent shuts the domain down; the devices stay claimed)."""
    click.echo(f"server {server_id}: {api.stop_server(server_id).get('status')}")


@server.command("start")
@click.argument("server_id")
@with_client
def start_server(api: ApiClient, server_id: str) -> None:
    """Start a stopped server."""
    click.echo(f"server {server_id}: {api.start_server(server_id).get('status')}")


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
                ("image", (s.get("image") or {}).get("name")),
                ("devices", devices),
            ]
        )
    )


@server.command("console")
@click.argument("server_id")
@click.option("--tail", type=click.IntRange(1, 1000), default=100, show_default=True, help="Lines to show.")
@click.option("--follow", is_flag=True, help="Keep showing new lines as the host's agent sends them (Ctrl-C ends).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True, help="Seconds, --follow.")
@with_client
def console(api: ApiClient, server_id: str, tail: int, follow: bool, interval: float) -> None:
    """Show the end of a server's serial console (control characters escaped: guest output cannot
    move the cursor, retitle or clear your terminal)."""
    shown: list[str] = []
    while True:
        lines = [str(line) for line in api.get_console(server_id, tail).get("lines") or []]
        for line in new_lines(shown, lines):
            click.echo(line)
        shown = lines
        if not follow:
            return
        time.sleep(interval)


def new_lines(shown: list[str], lines: list[str]) -> list[str]:
    """The lines of ``lines`` not shown yet: what follows the longest end of ``shown`` it begins with."""
    for start in range(max(0, len(shown) - len(lines)), len(shown)):
        overlap = shown[start:]
        if lines[: len(overlap)] == overlap:
            return lines[len(overlap) :]
    return lines


@server.command("delete")
@click.argument("server_id")
@click.option("--force", is_flag=True, help="Release at once, without the host's agent (the host is gone for good).")
@click.option("--wait", is_flag=True, help="Wait until the agent has torn it down and the devices are back.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True, help="Seconds, with --wait.")
@with_client
def delete_server(api: ApiClient, server_id: str, force: bool, wait: bool, timeout: float) -> None:
    """Delete a server: its agent destroys the domain, resets the VFs, and the devices return."""
    status = api.delete_server(server_id, force=force).get("status")
    if wait and status != "deleted":
        status = wait_for_status(api, server_id, {"deleted"}, timeout).get("status")
    click.echo(f"server {server_id}: {status}")
