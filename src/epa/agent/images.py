"""The host's image cache: each image part a server boots, fetched from the API on first use with the
agent's own token, streamed to a temporary file, its sha256 checked, then renamed into place - so a
file in the cache is always whole and verified. Files are named by their sha256: two images with the
same content share one file, and a changed image can never be mistaken for a cached one.

The cache is bounded: before a fetch, parts no server on the host uses are evicted, least recently
used first, until the new one fits; when the parts in use alone leave no room the fetch fails with
:class:`ImageCacheFull`, which the reconciler puts on the server. Operators who distribute images
themselves give ``image_dir``: ``IMAGE_DIR/NAME/PART`` is used in place (checked against the sha256
too, once per file version) and nothing is fetched."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from epa.domain.image import PARTS, ImageKind, parse_kind
from epa.errors import EpaError, InvalidInput, NotFound

log = logging.getLogger("epa.agent.images")

_HASH_CHUNK = 1024 * 1024


class ImageError(EpaError):
    """An image part cannot be had on this host (fetch failed, checksum mismatch, malformed server)."""

    code = "image_unavailable"


class ImageCacheFull(ImageError):
    code = "image_cache_full"


class ImageFetcher(Protocol):
    """What the cache needs of the API (``epa.client.ApiClient`` has it)."""

    def download_image_part(self, name: str, part: str, out: BinaryIO) -> tuple[int, str]: ...


@dataclass(frozen=True, slots=True)
class PartRef:
    """One part of a server's image as its snapshot names it."""

    image: str
    part: str
    size: int
    sha256: str
    format: str


@dataclass(frozen=True, slots=True)
class ImageRef:
    name: str
    kind: ImageKind
    cmdline: str | None
    parts: Mapping[str, PartRef]


def image_ref(server: Mapping[str, Any]) -> ImageRef | None:
    """The image a server (as the API lists it) boots, None for none; ``ImageError`` when malformed."""
    image = server.get("image")
    if image is None:
        return None
    where = f"server {server.get('name')!r}: image"
    if not isinstance(image, Mapping):
        raise ImageError(f"{where} ({image!r}) is not an object")
    name = image.get("name")
    kind = parse_kind(image.get("kind"))
    parts: dict[str, PartRef] = {}
    for item in image.get("parts") or []:
        if not isinstance(item, Mapping):
            raise ImageError(f"{where}: part ({item!r}) is not an object")
        size, sha, part, fmt = item.get("size"), item.get("sha256"), item.get("name"), item.get("format")
        if not (isinstance(size, int) and isinstance(sha, str) and len(sha) == 64 and isinstance(part, str)):
            raise ImageError(f"{where}: part ({item!r}) lacks a size, a sha256 or a name")
        parts[part] = PartRef(str(name), part, size, sha.lower(), str(fmt))
    missing = [p for p in PARTS[kind] if p not in parts]
    if not isinstance(name, str) or missing:
        raise ImageError(f"{where} {name!r}: parts {missing} are missing")
    cmdline = image.get("cmdline")
    return ImageRef(name, kind, cmdline if isinstance(cmdline, str) else None, parts)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ImageCache:
    """Parts cached under ``root`` (created, 0755: the hypervisor's user reads them), at most
    ``max_bytes`` in all."""

    def __init__(self, root: Path, max_bytes: int, fetcher: ImageFetcher, image_dir: Path | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.fetcher = fetcher
        self.image_dir = image_dir
        self._verified: dict[Path, tuple[int, int, str]] = {}
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        # A fetch cut off by a crash left its temporary file: never a cached part, only space.
        for stale in root.glob(".fetch-*"):
            stale.unlink(missing_ok=True)

    def path(self, ref: PartRef) -> Path:
        if self.image_dir is not None:
            return self.image_dir / ref.image / ref.part
        return self.root / ref.sha256

    def cached(self) -> dict[str, int]:
        """sha256 -> size of every part in the cache (what the host holds)."""
        return {p.name: p.stat().st_size for p in self.root.iterdir() if len(p.name) == 64 and p.is_file()}

    def ensure(self, ref: PartRef, in_use: Iterable[str] = ()) -> Path:
        """The local file of ``ref``, fetched first when the cache lacks it. ``in_use``: sha256 of the
        parts the host's other servers boot, which eviction must keep."""
        if self.image_dir is not None:
            return self._operator_file(ref)
        target = self.root / ref.sha256
        if target.is_file():
            os.utime(target)  # least recently *used*: a boot counts as a use
            return target
        self._make_room(ref, set(in_use))
        fd, tmp_name = tempfile.mkstemp(prefix=".fetch-", dir=self.root)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    size, sha = self.fetcher.download_image_part(ref.image, ref.part, out)
                except (NotFound, InvalidInput) as e:
                    raise ImageError(f"image {ref.image} {ref.part}: cannot fetch it from the API: {e}") from e
                out.flush()
                os.fsync(out.fileno())
            if size != ref.size or sha != ref.sha256:
                raise ImageError(
                    f"image {ref.image} {ref.part}: the download has {size} bytes with sha256 {sha}, the image "
                    f"says {ref.size} bytes with sha256 {ref.sha256}; the copy was thrown away"
                )
            tmp.chmod(0o644)
            tmp.rename(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        log.info("image %s %s: fetched %d bytes into %s", ref.image, ref.part, size, target)
        return target

    def _make_room(self, ref: PartRef, keep: set[str]) -> None:
        if ref.size > self.max_bytes:
            raise ImageCacheFull(
                f"image {ref.image} {ref.part}: {ref.size} bytes is more than this host's whole image cache "
                f"({self.max_bytes} bytes; the agent's --image-cache-size)"
            )
        entries = sorted(
            ((p.stat().st_mtime_ns, p) for p in self.root.iterdir() if len(p.name) == 64 and p.is_file()),
            key=lambda e: e[0],
        )
        used = sum(p.stat().st_size for _, p in entries)
        for _, path in entries:
            if used + ref.size <= self.max_bytes:
                break
            if path.name in keep:
                continue
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            used -= size
            log.info("image cache: evicted %s (%d bytes, unused)", path.name, size)
        if used + ref.size > self.max_bytes:
            raise ImageCacheFull(
                f"image {ref.image} {ref.part}: the image cache is full ({used} of {self.max_bytes} bytes held by "
                f"images servers on this host use; {ref.size} more needed)"
            )

    def _operator_file(self, ref: PartRef) -> Path:
        path = self.path(ref)
        try:
            st = path.stat()
        except OSError as e:
            raise ImageError(
                f"image {ref.image} {ref.part}: {path} cannot be read ({e.strerror or e}); with --image-dir the "
                "operator puts each image there as NAME/PART"
            ) from e
        known = self._verified.get(path)
        if known is None or known[:2] != (st.st_size, st.st_mtime_ns):
            known = (st.st_size, st.st_mtime_ns, _sha256_of(path))
            self._verified[path] = known
        if known[2] != ref.sha256:
            raise ImageError(f"image {ref.image} {ref.part}: {path} has sha256 {known[2]}, the image says {ref.sha256}")
        return path

    def drop(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / sha256).unlink()
