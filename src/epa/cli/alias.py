"""``epa alias``: named device requests in Nova's ``[pci] alias`` syntax."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from epa.cli.client_settings import with_client
from epa.cli.tables import ALIAS_HEADERS, alias_row, echo_json, render
from epa.client import ApiClient
from epa.errors import ConfigError, InvalidInput

json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


def read_alias_arg(arg: str) -> dict[str, Any] | list[dict[str, Any]]:
    """A JSON object or list of objects, given inline or as ``@FILE``."""
    text, where = arg, "alias"
    if arg.startswith("@"):
        path = Path(arg[1:])
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise ConfigError(f"alias {arg}: cannot read {path}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise ConfigError(f"alias {arg}: {path} is not UTF-8 text") from e
        where = f"alias in {path}"
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"{where}: {text.strip()[:80]!r} is not valid JSON: {e}") from e
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    raise InvalidInput(f"{where}: expected a JSON object or a non-empty list of objects")


@click.group()
def alias() -> None:
    """PCI aliases: what a flavor's pci_passthrough:alias names."""


@alias.command("create")
@click.argument("entry", metavar="JSON|@FILE")
@json_option
@with_client
def create_alias(api: ApiClient, entry: str, as_json: bool) -> None:
    """Create an alias from one entry, or a list of alternatives with one name."""
    created = api.create_alias(read_alias_arg(entry))
    if as_json:
        echo_json(created)
    else:
        click.echo(f"created alias {created.get('name')}")


@alias.command("list")
@json_option
@with_client
def list_aliases(api: ApiClient, as_json: bool) -> None:
    """List the aliases."""
    aliases = api.list_aliases()
    if as_json:
        echo_json(aliases)
    else:
        click.echo(render(ALIAS_HEADERS, [alias_row(a) for a in aliases]))


@alias.command("show")
@click.argument("name")
@json_option
@with_client
def show_alias(api: ApiClient, name: str, as_json: bool) -> None:
    """Show one alias and its alternatives."""
    a = api.get_alias(name)
    if as_json:
        echo_json(a)
    else:
        click.echo(render(ALIAS_HEADERS, [alias_row(a)]))


@alias.command("delete")
@click.argument("name")
@with_client
def delete_alias(api: ApiClient, name: str) -> None:
    """Delete an alias (refused while a flavor uses it)."""
    api.delete_alias(name)
    click.echo(f"deleted alias {name}")
