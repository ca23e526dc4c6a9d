"""/v1/images: images servers boot from. A part's bytes go up as the raw request body, read chunk by
chunk (never whole), and come down the same way to the agents of the hosts whose servers use it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from epa.api.auth import DB, Admin, Caller
from epa.api.limits import body_limit
from epa.domain.image import PARTS, ImageKind
from epa.errors import Forbidden, InvalidInput, PayloadTooLarge
from epa.inventory import images
from epa.inventory.images import ImageRecord
from epa.inventory.records import iso_utc
from epa.wire.image import ImageCreate, ImageList, ImageOut, ImagePart

router = APIRouter(prefix="/v1/images", tags=["images"])

DEFAULT_MAX_IMAGE_BYTES = 64 * 1024**3
# The body arrives in the server's own pieces (often 64 KiB); hand the database layer fewer, larger writes.
_BATCH = 1024 * 1024
_SHA256 = r"^[0-9a-fA-F]{64}$"


def image_out(record: ImageRecord) -> ImageOut:
    disk = record.part("disk")
    return ImageOut(
        id=record.id,
        name=record.name,
        kind=record.kind.value,
        cmdline=record.cmdline,
        parts=[
            ImagePart(name=p.name, format=p.format, size=p.size, virtual_size=p.virtual_size, sha256=p.sha256)
            for p in record.parts
        ],
        status=record.status.value,
        missing_parts=[p for p in PARTS[record.kind] if record.part(p) is None],
        # The disk's values at the top too: what `epa image list` shows for the common kind.
        format=disk.format if disk else None,
        virtual_size=disk.virtual_size if disk else None,
        servers=record.in_use,
        created_at=iso_utc(record.created_at) or "",
    )


def max_image_bytes(request: Request) -> int:
    limit: int = getattr(request.app.state, "max_image_bytes", DEFAULT_MAX_IMAGE_BYTES)
    return limit


@router.post("", status_code=201, response_model=ImageOut)
def create_image(body: ImageCreate, db: DB, _: Admin) -> ImageOut:
    return image_out(images.create_image(db, body.name, ImageKind(body.kind), body.cmdline))


@router.get("", response_model=ImageList)
def list_images(db: DB, _: Admin) -> ImageList:
    return ImageList(images=[image_out(i) for i in images.list_images(db)])


@router.get("/{name}", response_model=ImageOut)
def show_image(name: str, db: DB, _: Admin) -> ImageOut:
    return image_out(images.get_image(db, name))


@router.delete("/{name}", status_code=204)
def delete_image(name: str, db: DB, _: Admin) -> Response:
    images.delete_image(db, name)
    return Response(status_code=204)


@router.put(
    "/{name}/{part}",
    response_model=ImageOut,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string"}}}}
    },
)
@body_limit(None)  # streamed into the database; the route enforces --image-max-size itself
async def upload_part(
    name: str,
    part: str,
    request: Request,
    db: DB,
    _: Admin,
    x_image_sha256: Annotated[str | None, Header(pattern=_SHA256)] = None,
) -> ImageOut:
    """Upload one part (``disk``; or ``kernel`` and ``initrd``) as the raw body. The caller is
    authenticated from the headers before a byte of the body is read; a body past the server's limit is
    refused (413 ``payload_too_large``) - at once when ``Content-Length`` says so. ``X-Image-Sha256``:
    the client's checksum, compared with the upload's."""
    limit = max_image_bytes(request)
    # Read here rather than declared: the server has already checked it is a number matching the body.
    declared = request.headers.get("content-length")
    content_length = int(declared) if declared is not None and declared.isdigit() else None
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(f"image {name} {part}: {content_length} bytes is larger than the limit of {limit} bytes")
    upload = await run_in_threadpool(images.begin_upload, db, name, part, limit)
    try:
        pending = bytearray()
        async for piece in request.stream():
            pending += piece
            if len(pending) >= _BATCH:
                await run_in_threadpool(upload.write, bytes(pending))
                pending.clear()
        if pending:
            await run_in_threadpool(upload.write, bytes(pending))
        if content_length is not None and upload.size != content_length:
            raise InvalidInput(
                f"image {name} {part}: the body has {upload.size} bytes, Content-Length said {content_length}"
            )
        record = await run_in_threadpool(upload.commit, x_image_sha256)
    except BaseException:
        await run_in_threadpool(upload.abort)
        raise
    return image_out(record)


@router.get(
    "/{name}/{part}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_part(name: str, part: str, db: DB, who: Caller) -> StreamingResponse:
    """A part's bytes, for the admin or the agent of a host with a live server that boots the image."""
    if not who.is_admin and (who.host is None or not images.used_on_host(db, name, who.host)):
        raise Forbidden(f"the agent token of host {who.host!r} may not read image {name!r}: no server there uses it")
    record, chunks = images.read_part(db, name, part)
    headers = {"Content-Length": str(record.size), "X-Image-Sha256": record.sha256}
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)
