"""The ``epa`` entry point: a click group, and the one place that turns EpaError into an exit status."""

from __future__ import annotations

import sys

import click

from epa import __version__
from epa.cli.agent_cmd import agent
from epa.cli.alias import alias
from epa.cli.demo import demo
from epa.cli.device import device
from epa.cli.discover import discover
from epa.cli.flavor import flavor
from epa.cli.host import host
from epa.cli.serve import serve
from epa.cli.server import server
from epa.errors import EpaError, InvalidInput

EXIT_FAILURE = 1
EXIT_INVALID_INPUT = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="epa")
def cli() -> None:
    """EPA: Enhanced Platform Awareness for PCI devices in a VM cloud."""


cli.add_command(discover)
cli.add_command(agent)
cli.add_command(host)
cli.add_command(device)
cli.add_command(alias)
cli.add_command(flavor)
cli.add_command(serve)
cli.add_command(server)
cli.add_command(demo)


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
