"""The scheduler's explanation on the wire: what ``/v1/scheduler/explain`` is asked and answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from epa.wire.host import HOST_NAME
from epa.wire.server import PortIn


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    flavor: str = Field(pattern=HOST_NAME)
    ports: list[PortIn] = Field(default_factory=list, max_length=32)
    limit: int = Field(default=20, ge=1, le=1000, description="Ranked candidates to return.")
    image: str | None = Field(default=None, pattern=HOST_NAME, description="The image the server would boot.")


class Candidate(BaseModel):
    host: str
    score: float
    host_nodes: list[int]
    devices: list[dict[str, Any]]
    holds_image: bool = Field(description="Whether the host's image cache holds the image (a weigher term).")


class Rejected(BaseModel):
    host: str
    reason: str


class ExplainOut(BaseModel):
    request: dict[str, Any]
    candidates: list[Candidate]
    rejected: list[Rejected]
    summary: str
