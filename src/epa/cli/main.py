"""The ``epa`` entry point: a click group, and the one place that turns EpaError into an exit status."""

from __future__ import annotations

import importlib
import sys

import click

from epa import __version__
from epa.errors import EpaError, InvalidInput

EXIT_FAILURE = 1
EXIT_INVALID_INPUT = 2

# Each command's module, imported only when that command runs (or help lists them all): `epa server
# list` need not load the web framework, SQLAlchemy and numpy, which cost more than a second at start.
COMMANDS = {
    "discover": "epa.cli.discover:discover",
    "agent": "epa.cli.agent_cmd:agent",
    "host": "epa.cli.host:host",
    "device": "epa.cli.device:device",
    "alias": "epa.cli.alias:alias",
    "flavor": "epa.cli.flavor:flavor",
    "image": "epa.cli.image:image",
    "serve": "epa.cli.serve:serve",
    "server": "epa.cli.server:server",
    "demo": "epa.cli.demo:demo",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, name = target.split(":")
        command = getattr(importlib.import_module(module), name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="epa")
def cli() -> None:
    """EPA: Enhanced Platform Awareness for PCI devices in a VM cloud."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; an EpaError becomes one line on stderr and an exit status, never a traceback."""
    try:
        cli.main(args=argv, prog_name="epa", standalone_mode=False)
    except EpaError as e:
        click.echo(f"epa: error: {e}", err=True)
        return EXIT_INVALID_INPUT if isinstance(e, InvalidInput) else EXIT_FAILURE
    except click.exceptions.Abort:
        click.echo("epa: aborted", err=True)
        return EXIT_FAILURE
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
