"""``epa image``: upload images servers boot from, see them, delete them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from epa.cli.client_settings import with_client
from epa.cli.tables import echo_json, key_values, render
from epa.client import ApiClient
from epa.errors import InvalidInput

json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
IMAGE_HEADERS = ("NAME", "KIND", "STATUS", "FORMAT", "VIRTUAL SIZE", "SIZE", "SHA256", "SERVERS")
_FILE = click.Path(dir_okay=False, path_type=Path)


def _size(n: object) -> str:
    if not isinstance(n, int):
        return "-"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def image_row(i: dict[str, Any]) -> list[str]:
    parts = i.get("parts") or []
    return [
        str(i.get("name")),
        str(i.get("kind")),
        str(i.get("status")),
        str(i.get("format") or ("kernel+initrd" if i.get("kind") == "kernel" else "-")),
        _size(i.get("virtual_size")),
        _size(sum(p.get("size", 0) for p in parts)) if parts else "-",
        ",".join(str(p.get("sha256", ""))[:12] for p in parts) or "-",
        str(i.get("servers", 0)),
    ]


@click.group()
def image() -> None:
    """Images: disks (qcow2 or raw) and direct-kernel-boot images servers boot from."""


@image.command("create")
@click.argument("name")
@click.option("--file", "disk", type=_FILE, default=None, help="A disk image (qcow2 or raw; told from its content).")
@click.option("--kernel", type=_FILE, default=None, help="A kernel (bzImage), for a direct-kernel-boot image.")
@click.option("--initrd", type=_FILE, default=None, help="Its initrd, with --kernel.")
@click.option("--cmdline", default=None, help="The kernel command line, with --kernel.")
@json_option
@with_client
def create_image(
    api: ApiClient,
    name: str,
    disk: Path | None,
    kernel: Path | None,
    initrd: Path | None,
    cmdline: str | None,
    as_json: bool,
) -> None:
    """Create an image and upload its file(s), streamed. On a refused upload the image is deleted again."""
    if (disk is None) == (kernel is None):
        raise InvalidInput("image create: give either --file (a disk image) or --kernel and --initrd")
    if kernel is not None and initrd is None:
        raise InvalidInput("image create: --kernel needs --initrd")
    if disk is not None and (initrd is not None or cmdline is not None):
        raise InvalidInput("image create: --initrd and --cmdline go with --kernel, not --file")
    files = {"disk": disk} if disk is not None else {"kernel": kernel, "initrd": initrd}
    for what, path in files.items():
        if path is None or not path.is_file():
            raise InvalidInput(f"image create: --{'file' if what == 'disk' else what} ({str(path)!r}) is not a file")
    created = api.create_image(name, "disk" if disk is not None else "kernel", cmdline)
    try:
        for part, path in files.items():
            assert path is not None  # noqa: S101 - checked above
            created = api.upload_image_part(name, part, path)
    except BaseException:
        # An image the user cannot finish is only clutter: take it back.
        api.delete_image(name)
        raise
    if as_json:
        echo_json(created)
    else:
        click.echo(render(IMAGE_HEADERS, [image_row(created)]))


@image.command("list")
@json_option
@with_client
def list_images(api: ApiClient, as_json: bool) -> None:
    """List the images."""
    found = api.list_images()
    if as_json:
        echo_json(found)
    else:
        click.echo(render(IMAGE_HEADERS, [image_row(i) for i in found]))


@image.command("show")
@click.argument("name")
@json_option
@with_client
def show_image(api: ApiClient, name: str, as_json: bool) -> None:
    """Show one image and its parts."""
    i = api.get_image(name)
    if as_json:
        echo_json(i)
        return
    rows: list[tuple[str, object]] = [
        ("name", i.get("name")),
        ("id", i.get("id")),
        ("kind", i.get("kind")),
        ("status", i.get("status")),
        ("cmdline", i.get("cmdline")),
        ("servers", i.get("servers")),
    ]
    for p in i.get("parts") or []:
        what = f"{p.get('format')}, {_size(p.get('size'))}, virtual {_size(p.get('virtual_size'))}"
        rows.append((str(p.get("name")), what))
    click.echo(key_values(rows))
    # Whole, not cut to a table cell's width: it is what a user compares with sha256sum's.
    for p in i.get("parts") or []:
        click.echo(f"{p.get('name')} sha256: {p.get('sha256')}")


@image.command("delete")
@click.argument("name")
@with_client
def delete_image(api: ApiClient, name: str) -> None:
    """Delete an image (refused while a server uses it)."""
    api.delete_image(name)
    click.echo(f"deleted image {name}")
