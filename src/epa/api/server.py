"""Running the API under uvicorn, with the listen-address safety rule."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import uvicorn

from epa.api.app import create_app
from epa.api.connections import HEADER_TIMEOUT_S, MAX_CONNECTIONS, guarded_httptools
from epa.errors import InvalidInput
from epa.inventory import Database
from epa.service.scheduling import ServiceConfig


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(host: str, tls: bool, allow_insecure: bool) -> None:
    """Tokens travel in headers: refuse plain HTTP off the loopback unless told otherwise."""
    if not is_loopback(host) and not tls and not allow_insecure:
        raise InvalidInput(
            f"--listen {host} is not a loopback address and no --tls-cert/--tls-key is given: bearer "
            "tokens would cross the network in clear text (pass --allow-insecure-remote to do it anyway)"
        )


# Seconds an idle keep-alive connection stays open: longer than any client keeps one for reuse (httpx, which
# epa.client and the agent use: 5 s; load balancers: about 60 s). A server that closes first races with a client
# sending its next request on that connection, which then fails with "connection reset by peer" unread;
# uvicorn's default is 5 s, the same as httpx's.
KEEP_ALIVE_S = 75


def uvicorn_options(
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    log_level: str = "info",
    header_timeout_s: float = HEADER_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
) -> dict[str, Any]:
    """What ``epa serve`` runs uvicorn with (``uvicorn.run`` or ``uvicorn.Config`` keywords)."""
    return {
        "http": guarded_httptools(header_timeout_s, max_connections),
        "host": host,
        "port": port,
        "log_level": log_level,
        "ssl_certfile": str(tls_cert) if tls_cert else None,
        "ssl_keyfile": str(tls_key) if tls_key else None,
        "access_log": False,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }


def serve(
    db: Database,
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    log_level: str = "info",
    config: ServiceConfig | None = None,
    metrics_public: bool = False,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
    max_image_bytes: int | None = None,
) -> None:
    options = uvicorn_options(host, port, tls_cert, tls_key, log_level, header_timeout_s, max_connections)
    # epa serve's view is woken by the change feed's notifications (on PostgreSQL).
    app = (
        create_app(db, config, metrics_public=metrics_public, listen=True)
        if max_image_bytes is None
        else create_app(db, config, metrics_public=metrics_public, max_image_bytes=max_image_bytes, listen=True)
    )
    uvicorn.run(app, **options)
