"""``epa serve``: the REST API on SQLite (default, zero set-up) or PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import click
import platformdirs

from epa.api.connections import HEADER_TIMEOUT_S, MAX_CONNECTIONS
from epa.api.server import check_listen
from epa.api.server import serve as run_server
from epa.crashpoints import armed
from epa.errors import InvalidInput
from epa.inventory import Database
from epa.inventory.tokens import create_admin_token, ensure_admin_token
from epa.scheduler.scheduler import SchedulerConfig
from epa.scheduler.weigh import POLICIES, WeighConfig
from epa.service.scheduling import ServiceConfig

DEFAULT_PORT = 8700


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("epa"))


def private_dir(path: Path) -> Path:
    """EPA's data directory, made (or tightened to) 0700 whatever the umask: it holds the database and tokens."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_secret(path: Path, secret: str) -> None:
    """Write a token readable by its owner only (created 0600, never world-readable even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(path, 0o600)


@click.command()
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    default=None,
    help="SQLite database file (default: DATA_DIR/epa.db).",
)
@click.option(
    "--database-url",
    envvar="EPA_DATABASE_URL",
    default=None,
    help="A SQLAlchemy URL, e.g. postgresql+psycopg://user@host/epa (env EPA_DATABASE_URL).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the SQLite file and the admin token live (default: the user data dir).",
)
@click.option("--listen", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
@click.option(
    "--allow-insecure-remote",
    is_flag=True,
    help="Listen on a non-loopback address without TLS (tokens in clear text).",
)
@click.option(
    "--weigher",
    type=click.Choice(POLICIES),
    default="spread",
    show_default=True,
    help="Spread servers over the emptiest hosts, pack them onto the fullest that fit, or pack them and "
    "keep whole PFs and PCIe switches whole (fragmentation).",
)
@click.option("--cpu-allocation-ratio", type=click.FloatRange(min=0.1, max=64.0), default=1.0, show_default=True)
@click.option("--ram-allocation-ratio", type=click.FloatRange(min=0.1, max=4.0), default=1.0, show_default=True)
@click.option(
    "--refresh-seconds",
    type=click.FloatRange(min=0.05, max=3600.0),
    default=1.0,
    show_default=True,
    help="How often the scheduler view reads the change feed and re-checks liveness; on PostgreSQL a change "
    "made by another API process also wakes it at once.",
)
@click.option(
    "--agent-timeout",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    help="Seconds after its agent's last report before a host gets no new servers.",
)
@click.option(
    "--metrics-public",
    is_flag=True,
    help="Serve /metrics without a token (for a Prometheus scraper on a trusted network; host names and use).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=HEADER_TIMEOUT_S,
    show_default=True,
    help="Seconds a client has to send a request's headers before its connection is closed.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=MAX_CONNECTIONS,
    show_default=True,
    help="Open connections at most; a connection past this is closed at once.",
)
@click.option(
    "--image-max-size",
    "image_max_gb",
    type=click.FloatRange(min=0.001),
    default=64.0,
    show_default=True,
    metavar="GIB",
    help="The largest image part an upload may send (a larger one is refused with 413).",
)
@click.option("--new-admin-token", is_flag=True, help="Create another admin token and write it to the token file.")
def serve(
    db_path: Path | None,
    database_url: str | None,
    data_dir: Path | None,
    listen: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    allow_insecure_remote: bool,
    weigher: str,
    cpu_allocation_ratio: float,
    ram_allocation_ratio: float,
    refresh_seconds: float,
    agent_timeout: float,
    metrics_public: bool,
    header_timeout: float,
    max_connections: int,
    image_max_gb: float,
    new_admin_token: bool,
) -> None:
    """Run the EPA API server (migrates the database on start)."""
    if db_path is not None and database_url:
        raise InvalidInput("--db and --database-url (or EPA_DATABASE_URL) are alternatives; give one")
    if (tls_cert is None) != (tls_key is None):
        raise InvalidInput("--tls-cert and --tls-key go together")
    check_listen(listen, tls=tls_cert is not None, allow_insecure=allow_insecure_remote)
    if refresh_seconds > agent_timeout / 8:
        # Liveness is re-read a quarter of the timeout ahead (service.refresh): views must refresh well inside it.
        raise InvalidInput(
            f"--refresh-seconds {refresh_seconds:g} is more than an eighth of --agent-timeout {agent_timeout:g}"
        )
    crash_at = armed()
    if crash_at:
        click.echo(f"epa: WARNING: crash points armed (EPA_CRASH_AT): {', '.join(sorted(crash_at))}", err=True)
    data = private_dir(data_dir or default_data_dir())
    url = database_url or f"sqlite:///{(db_path or data / 'epa.db').resolve()}"
    db = Database.connect(url)
    db.migrate()
    token_file = data / "admin-token"
    token = create_admin_token(db) if new_admin_token else ensure_admin_token(db)
    if token is not None:
        write_secret(token_file, token)
        click.echo(f"epa: admin token created and written to {token_file}")
    elif token_file.exists():
        click.echo(f"epa: admin token in {token_file}")
    else:
        click.echo(
            f"epa: an admin token exists but {token_file} is gone; run with --new-admin-token to make another",
            err=True,
        )
    scheme = "https" if tls_cert else "http"
    click.echo(f"epa: serving {scheme}://{listen}:{port} (API docs at /docs) on {db.url_for_display}")
    config = ServiceConfig(
        scheduler=SchedulerConfig(weigh=WeighConfig.policy(weigher), alive_seconds=agent_timeout),
        cpu_allocation_ratio=cpu_allocation_ratio,
        ram_allocation_ratio=ram_allocation_ratio,
        refresh_seconds=refresh_seconds,
    )
    run_server(
        db,
        listen,
        port,
        tls_cert,
        tls_key,
        config=config,
        metrics_public=metrics_public,
        header_timeout_s=header_timeout,
        max_connections=max_connections,
        max_image_bytes=int(image_max_gb * 1024**3),
    )
