"""Bodies of the server and scheduler routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from epa.api.schemas.host import HOST_NAME


class PortBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    physnet: str = Field(min_length=1, max_length=64)
    vnic_type: str = Field(default="direct", max_length=32)
    trusted: bool = False
    vlan: int | None = None
    mac: str | None = Field(default=None, max_length=17)


class ServerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=HOST_NAME)
    flavor: str = Field(pattern=HOST_NAME)
    ports: list[PortBody] = Field(default_factory=list, max_length=32)
    image: str | None = Field(default=None, pattern=HOST_NAME, description="The image the server boots.")
    ssh_keys: list[Annotated[str, Field(max_length=8192)]] = Field(
        default_factory=list, max_length=16, description="OpenSSH public keys for the guest's default user."
    )
    user_data: str | None = Field(
        default=None, max_length=65536, description="cloud-init user-data (NoCloud seed), at most 64 KiB."
    )


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    flavor: str = Field(pattern=HOST_NAME)
    ports: list[PortBody] = Field(default_factory=list, max_length=32)
    limit: int = Field(default=20, ge=1, le=1000, description="Ranked candidates to return.")
    image: str | None = Field(default=None, pattern=HOST_NAME, description="The image the server would boot.")


class ServerState(BaseModel):
    """What a host's agent reports about a server."""

    model_config = ConfigDict(extra="forbid", strict=True)
    status: Literal["building", "active", "stopped", "error"] | None = None
    reason: str | None = Field(default=None, max_length=4096)
    domain_uuid: str | None = Field(default=None, max_length=36)
    domain_state: str | None = Field(default=None, max_length=32)
    domain_xml: str | None = Field(default=None, max_length=1_000_000)


class ServerOut(BaseModel):
    id: str
    name: str
    status: str
    status_reason: str | None
    host: str | None
    host_nodes: list[int]
    flavor: dict[str, Any]
    ports: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    domain_uuid: str | None
    domain_state: str | None
    domain_xml: str | None
    image: dict[str, Any] | None = None
    ssh_keys: list[str] = Field(default_factory=list)
    user_data: str | None = None
    created_at: str
    updated_at: str


class ServerList(BaseModel):
    servers: list[ServerOut]


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


class ConsoleIn(BaseModel):
    """What a host's agent sends of a server's console: its end, already escaped (escaped again here)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    text: str = Field(max_length=256 * 1024)


class ConsoleOut(BaseModel):
    server_id: str
    lines: list[str]
    updated_at: str | None
