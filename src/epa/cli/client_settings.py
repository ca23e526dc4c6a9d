"""Where the CLI finds the API server and its token: flags, then the environment (``EPA_URL``,
``EPA_TOKEN``), then a client config file, then the defaults (the local server, and the admin token
file that ``epa serve`` writes)."""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import platformdirs

from epa.client import DEFAULT_URL, ApiClient
from epa.errors import ConfigError, Unauthorized

ENV_URL = "EPA_URL"
ENV_TOKEN = "EPA_TOKEN"  # noqa: S105 - the name of a variable, not a secret
_KEYS = ("url", "token", "token_file")

R = TypeVar("R")


def default_client_config() -> Path:
    return Path(platformdirs.user_config_dir("epa")) / "client.toml"


def default_admin_token_file() -> Path:
    """Where ``epa serve`` writes the admin token when it runs with its default data dir."""
    return Path(platformdirs.user_data_dir("epa")) / "admin-token"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    url: str
    token: str | None
    # Where the token came from, for error messages: "--token", "EPA_TOKEN", a file path...
    token_source: str | None = None

    def client(self, timeout: float = 10.0) -> ApiClient:
        return ApiClient(self.url, self.token, timeout=timeout)


def _read_token_file(path: Path, what: str) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"{what}: cannot read token file {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what}: token file {path} is not UTF-8 text") from e
    if not token:
        raise ConfigError(f"{what}: token file {path} is empty")
    return token


def _read_config(path: Path) -> Mapping[str, str]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as e:
        raise ConfigError(f"cannot read client config {path}: {e.strerror or e}") from e
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"client config {path} is not valid TOML: {e}") from e
    out: dict[str, str] = {}
    for key, value in document.items():
        if key not in _KEYS:
            raise ConfigError(f"client config {path}: unknown key {key!r} (known: {', '.join(_KEYS)})")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"client config {path}: {key} ({value!r}) must be a non-empty string")
        out[key] = value.strip()
    return out


def resolve_settings(
    server: str | None,
    token: str | None,
    token_file: Path | None,
    client_config: Path | None,
    environ: Mapping[str, str] | None = None,
    default_config: Path | None = None,
    default_token_file: Path | None = None,
) -> ClientSettings:
    """The URL and token to use. An explicit ``client_config`` must exist; the default one may not."""
    env = os.environ if environ is None else environ
    config_path = client_config or default_config or default_client_config()
    config: Mapping[str, str] = {}
    if client_config is not None or config_path.is_file():
        config = _read_config(config_path)
    url = server or env.get(ENV_URL) or config.get("url") or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"server URL {url!r} must start with http:// or https://")
    if token:
        return ClientSettings(url, token, "--token")
    if token_file is not None:
        return ClientSettings(url, _read_token_file(token_file, "--token-file"), str(token_file))
    if env.get(ENV_TOKEN):
        return ClientSettings(url, env[ENV_TOKEN], ENV_TOKEN)
    if "token" in config:
        return ClientSettings(url, config["token"], str(config_path))
    if "token_file" in config:
        path = Path(config["token_file"]).expanduser()
        if not path.is_absolute():
            path = config_path.parent / path
        return ClientSettings(url, _read_token_file(path, f"{config_path}: token_file"), str(path))
    admin = default_token_file or default_admin_token_file()
    if admin.is_file():
        return ClientSettings(url, _read_token_file(admin, "admin token"), str(admin))
    return ClientSettings(url, None)


def with_client(func: Callable[..., R]) -> Callable[..., R]:
    """Add the ``--server``, ``--token``, ``--token-file`` and ``--client-config`` options to a click
    command, and call it with ``api`` (an ApiClient, closed afterwards) instead of them."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        server: str | None,
        token: str | None,
        token_file: Path | None,
        client_config: Path | None,
        **kwargs: Any,
    ) -> R:
        settings = resolve_settings(server, token, token_file, client_config)
        with settings.client() as api:
            try:
                return func(*args, api=api, **kwargs)
            except Unauthorized as e:
                if settings.token is not None:
                    raise
                raise Unauthorized(
                    f"{e} (no API token was given: use --token, --token-file, {ENV_TOKEN} or a client "
                    f"config; on the server host the admin token is in {default_admin_token_file()})"
                ) from e

    options = (
        click.option(
            "--client-config",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="TOML file with url / token / token_file keys (default ~/.config/epa/client.toml).",
        ),
        click.option(
            "--token-file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Read the API token from this file.",
        ),
        click.option("--token", default=None, help=f"The API token (env {ENV_TOKEN})."),
        click.option(
            "--server",
            default=None,
            metavar="URL",
            help=f"The EPA API (env {ENV_URL}; default {DEFAULT_URL}).",
        ),
    )
    decorated: Callable[..., R] = wrapper
    for option in options:
        decorated = option(decorated)
    return decorated
