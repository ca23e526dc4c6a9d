"""An image on the wire: the body that creates one and what ``/v1/images`` answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from epa.wire.host import HOST_NAME


class ImageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=HOST_NAME, description="1-63 characters of [A-Za-z0-9._-], starting alnum")
    kind: Literal["disk", "kernel"] = "disk"
    cmdline: str | None = Field(
        default=None, max_length=2048, description="Kernel images: the default kernel command line."
    )


class ImagePart(BaseModel):
    name: str
    format: str
    size: int
    virtual_size: int | None
    sha256: str


class ImageOut(BaseModel):
    # The order the answer always had: the server's snapshot of the image first.
    id: str
    name: str
    kind: str
    cmdline: str | None
    parts: list[ImagePart]
    status: str
    missing_parts: list[str]
    format: str | None
    virtual_size: int | None
    servers: int
    created_at: str


class ImageList(BaseModel):
    images: list[ImageOut]
