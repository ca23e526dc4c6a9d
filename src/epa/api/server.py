"""Running the API under uvicorn, with the listen-address safety rule."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import uvicorn

from epa.api.app import create_app
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


def serve(
    db: Database,
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    log_level: str = "info",
    config: ServiceConfig | None = None,
) -> None:
    uvicorn.run(
        create_app(db, config),
        host=host,
        port=port,
        log_level=log_level,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        access_log=False,
    )
