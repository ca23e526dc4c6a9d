"""Images in the database: create one, upload its parts chunk by chunk, read them back chunk by chunk,
list, show and delete (refused while a live server uses the image).

The bytes live in the database, in rows of at most :data:`CHUNK_BYTES`, so that every ``epa serve``
process - on any machine, sharing one PostgreSQL - serves every image with nothing else to share or
keep in step (a shared directory would need a network file system on every API machine, and its own
backups). Each chunk is written in its own short transaction: an upload never holds SQLite's one write
lock, or a long PostgreSQL transaction, for the minutes a big image takes. A part is visible only once
its last chunk is in and its row (format, size, sha256) is written; an upload that fails leaves no
chunk behind, and one cut off by a crash leaves the image ``queued`` until a new upload replaces it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from epa.domain.flavor import check_name
from epa.domain.image import (
    PARTS,
    PROBE_BYTES,
    ImageKind,
    ImageStatus,
    InvalidImage,
    check_cmdline,
    check_part,
    finish,
    probe_head,
)
from epa.domain.server import ServerStatus
from epa.errors import Conflict, NotFound, PayloadTooLarge
from epa.inventory.db import Database
from epa.inventory.schema import HostRow, ImageChunkRow, ImagePartRow, ImageRow, ServerRow, utcnow

CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PartRecord:
    name: str
    format: str
    size: int
    virtual_size: int | None
    sha256: str

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "format": self.format,
            "size": self.size,
            "virtual_size": self.virtual_size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, slots=True)
class ImageRecord:
    id: str
    name: str
    kind: ImageKind
    status: ImageStatus
    cmdline: str | None
    parts: tuple[PartRecord, ...]
    created_at: datetime
    in_use: int = 0

    def part(self, name: str) -> PartRecord | None:
        return next((p for p in self.parts if p.name == name), None)

    def snapshot(self) -> dict[str, Any]:
        """What a server keeps of its image: enough for its agent to fetch and verify each part."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "cmdline": self.cmdline,
            "parts": [p.to_json() for p in self.parts],
        }


_LIVE = ServerRow.status != ServerStatus.DELETED.value


def _row(session: Session, name: str, lock: bool = False) -> ImageRow:
    query = select(ImageRow).where(ImageRow.name == name)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound(f"image {name!r} does not exist")
    return row


def _records(session: Session, rows: list[ImageRow]) -> list[ImageRecord]:
    ids = [r.id for r in rows]
    parts: dict[str, list[PartRecord]] = {}
    for p in session.execute(
        select(ImagePartRow).where(ImagePartRow.image_id.in_(ids)).order_by(ImagePartRow.part)
    ).scalars():
        parts.setdefault(p.image_id, []).append(PartRecord(p.part, p.format, p.size, p.virtual_size, p.sha256))
    users = dict(
        session.execute(
            select(ServerRow.image_id, func.count())
            .where(ServerRow.image_id.in_(ids), _LIVE)
            .group_by(ServerRow.image_id)
        ).all()
    )
    return [
        ImageRecord(
            r.id,
            r.name,
            ImageKind(r.kind),
            ImageStatus(r.status),
            r.cmdline,
            tuple(parts.get(r.id, ())),
            r.created_at,
            int(users.get(r.id, 0)),
        )
        for r in rows
    ]


def create_image(db: Database, name: str, kind: ImageKind, cmdline: str | None = None) -> ImageRecord:
    """A ``queued`` image with no parts yet; ``Conflict`` if the name is taken."""
    check_name(name, "image", InvalidImage)
    if kind is ImageKind.DISK and cmdline is not None:
        raise InvalidImage(f"image {name}: cmdline ({cmdline!r}) applies to kernel images only")
    if cmdline is not None:
        check_cmdline(cmdline)
    now = utcnow()
    row = ImageRow(
        id=str(uuid.uuid4()),
        name=name,
        kind=kind.value,
        status=ImageStatus.QUEUED.value,
        cmdline=cmdline if kind is ImageKind.KERNEL else None,
        created_at=now,
        updated_at=now,
    )
    with db.transaction() as session:
        if session.execute(select(ImageRow.id).where(ImageRow.name == name)).first() is not None:
            raise Conflict(f"image {name!r} already exists")
        session.add(row)
        try:
            session.flush()
        except IntegrityError as e:
            raise Conflict(f"image {name!r} already exists") from e
        return _records(session, [row])[0]


def get_image(db: Database, name: str) -> ImageRecord:
    with db.transaction(readonly=True) as session:
        return _records(session, [_row(session, name)])[0]


def list_images(db: Database) -> list[ImageRecord]:
    with db.transaction(readonly=True) as session:
        return _records(session, list(session.execute(select(ImageRow).order_by(ImageRow.name)).scalars()))


def active_image(db: Database, name: str) -> ImageRecord:
    """The image a new server may boot: it exists and is whole (``InvalidImage`` if still queued)."""
    image = get_image(db, name)
    if image.status is not ImageStatus.ACTIVE:
        missing = ", ".join(p for p in PARTS[image.kind] if image.part(p) is None)
        raise InvalidImage(f"image ({name!r}) is not active yet: its {missing} has not been uploaded")
    return image


def delete_image(db: Database, name: str) -> None:
    """Delete the image and its bytes; ``Conflict`` naming a server while any live server uses it."""
    with db.transaction() as session:
        row = _row(session, name, lock=True)
        user = session.execute(
            select(ServerRow.name, ServerRow.id).where(ServerRow.image_id == row.id, _LIVE).limit(1)
        ).first()
        if user is not None:
            raise Conflict(f"image {name!r} is used by server {user[0]!r} ({user[1]}); delete the server first")
        # Deleted servers keep their snapshot of the image, not the reference.
        session.execute(update(ServerRow).where(ServerRow.image_id == row.id).values(image_id=None))
        try:
            session.execute(delete(ImageRow).where(ImageRow.id == row.id))
            session.flush()
        except IntegrityError as e:
            # A server was created with it meanwhile (the foreign key is the backstop).
            raise Conflict(f"image {name!r} was just given to a new server; delete the server first") from e


class PartUpload:
    """One part's upload: :meth:`write` the body's pieces as they arrive, then :meth:`commit`; any
    failure before that calls :meth:`abort`, which removes what was stored. Nothing is held in memory
    but the current chunk and the first :data:`PROBE_BYTES` (to tell the format)."""

    def __init__(self, db: Database, image: ImageRecord, part: str, limit: int) -> None:
        self.db = db
        self.image = image
        self.part = part
        self.limit = limit
        self.where = f"image {image.name} {part}"
        self.size = 0
        self._seq = 0
        self._buffer = bytearray()
        self._head = bytearray()
        self._probed = False
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise PayloadTooLarge(f"{self.where}: the upload is larger than the limit of {self.limit} bytes")
        self._hash.update(data)
        if len(self._head) < PROBE_BYTES:
            self._head += data[: PROBE_BYTES - len(self._head)]
        if not self._probed and len(self._head) >= PROBE_BYTES:
            # Refuse what is plainly not an image before storing gigabytes of it.
            probe_head(self.part, bytes(self._head), self.where)
            self._probed = True
        self._buffer += data
        while len(self._buffer) >= CHUNK_BYTES:
            self._store(bytes(self._buffer[:CHUNK_BYTES]))
            del self._buffer[:CHUNK_BYTES]

    def _store(self, chunk: bytes) -> None:
        with self.db.transaction() as session:
            session.add(ImageChunkRow(image_id=self.image.id, part=self.part, seq=self._seq, data=chunk))
        self._seq += 1

    def commit(self, expected_sha256: str | None = None) -> ImageRecord:
        """Store the last chunk, check the content, record the part; the image is ``active`` when it
        was its last missing part. ``expected_sha256``: the checksum the client computed."""
        result = finish(self.part, bytes(self._head), self.size, self.where)
        digest = self._hash.hexdigest()
        if expected_sha256 is not None and expected_sha256.lower() != digest:
            raise InvalidImage(f"{self.where}: sha256 ({expected_sha256!r}) does not match the upload's ({digest})")
        if self._buffer:
            self._store(bytes(self._buffer))
            self._buffer.clear()
        with self.db.transaction() as session:
            row = session.execute(select(ImageRow).where(ImageRow.id == self.image.id).with_for_update()).scalar()
            if row is None:
                raise NotFound(f"image {self.image.name!r} was deleted during the upload")
            session.add(
                ImagePartRow(
                    image_id=row.id,
                    part=self.part,
                    format=result.format.value,
                    size=self.size,
                    virtual_size=result.virtual_size,
                    sha256=digest,
                )
            )
            session.flush()
            have = set(session.execute(select(ImagePartRow.part).where(ImagePartRow.image_id == row.id)).scalars())
            if have >= set(PARTS[ImageKind(row.kind)]):
                row.status = ImageStatus.ACTIVE.value
            row.updated_at = utcnow()
            session.flush()
            return _records(session, [row])[0]

    def abort(self) -> None:
        with self.db.transaction() as session:
            session.execute(
                delete(ImageChunkRow).where(ImageChunkRow.image_id == self.image.id, ImageChunkRow.part == self.part)
            )


def begin_upload(db: Database, name: str, part: str, limit: int) -> PartUpload:
    """Start uploading ``part`` of queued image ``name`` (the chunks of an earlier, broken upload of it
    are dropped); ``Conflict`` when the part is already there (an image never changes once uploaded:
    agents cache it by checksum)."""
    with db.transaction() as session:
        row = _row(session, name, lock=True)
        image = _records(session, [row])[0]
        check_part(image.kind, part)
        if image.part(part) is not None:
            raise Conflict(f"image {name!r} already has its {part}; an image is immutable (create another one)")
        session.execute(delete(ImageChunkRow).where(ImageChunkRow.image_id == row.id, ImageChunkRow.part == part))
    return PartUpload(db, image, part, limit)


def read_part(db: Database, name: str, part: str) -> tuple[PartRecord, Iterator[bytes]]:
    """The part's record and its bytes, one chunk per read transaction (never the whole part in memory)."""
    image = get_image(db, name)
    check_part(image.kind, part)
    record = image.part(part)
    if record is None:
        raise NotFound(f"image {name!r} has no {part} yet")

    def chunks() -> Iterator[bytes]:
        seq = 0
        while True:
            with db.transaction(readonly=True) as session:
                data = session.execute(
                    select(ImageChunkRow.data).where(
                        ImageChunkRow.image_id == image.id, ImageChunkRow.part == part, ImageChunkRow.seq == seq
                    )
                ).scalar_one_or_none()
            if data is None:
                return
            yield bytes(data)
            seq += 1

    return record, chunks()


def used_on_host(db: Database, name: str, host: str) -> bool:
    """True when a live server on ``host`` boots image ``name``: what lets that host's agent read it."""
    with db.transaction(readonly=True) as session:
        found = session.execute(
            select(ServerRow.id)
            .join(ImageRow, ImageRow.id == ServerRow.image_id)
            .join(HostRow, HostRow.id == ServerRow.host_id)
            .where(ImageRow.name == name, HostRow.name == host, _LIVE)
            .limit(1)
        ).first()
    return found is not None
