"""A host on the wire: the bodies of the host routes (create, enable/disable, what its agent says of its
hypervisor and its image cache) and the host as ``/v1/hosts`` answers it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

HOST_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
# The largest number the inventory stores: its INTEGER columns are 32-bit on PostgreSQL (SQLite would store
# more, so without this bound the backends disagreed: 200 or 409 on one, "integer out of range" on the other).
STORED_INT_MAX = 2**31 - 1


class HostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=HOST_NAME, description="1-63 characters of [A-Za-z0-9._-], starting alnum")


class HostPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    enabled: StrictBool


class NumaCellBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    node: int = Field(ge=0, le=1023)
    socket: int | None = Field(default=None, ge=0, le=1023)
    cpus: list[int] = Field(default_factory=list, max_length=16384)
    memory_mb: int = Field(ge=0, le=STORED_INT_MAX)


class HypervisorBody(BaseModel):
    """What an agent says of its hypervisor: reachable or why not, and the domain type it makes."""

    model_config = ConfigDict(extra="forbid")
    uri: str = Field(min_length=1, max_length=1024)
    reachable: StrictBool
    reason: str | None = Field(default=None, max_length=4000)
    domain_type: Literal["kvm", "qemu", "test"] | None = None
    warnings: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=20)


class HypervisorOut(HypervisorBody):
    reported_at: str = Field(description="When the agent said so (ISO 8601, UTC).")


SHA256 = r"^[0-9a-f]{64}$"
# More distinct parts than any cache holds (a part is at least 64 KiB): bounds the body, not the cache.
MAX_CACHED_PARTS = 10_000


class CachedPart(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sha256: str = Field(pattern=SHA256)
    size: int = Field(ge=0, le=2**63 - 1)


class CachedImagesBody(BaseModel):
    """What an agent's image cache holds: every part, by checksum and size."""

    model_config = ConfigDict(extra="forbid", strict=True)
    parts: list[CachedPart] = Field(max_length=MAX_CACHED_PARTS)


class CachedPartOut(CachedPart):
    images: list[str] = Field(description="The images this part belongs to, when it was reported.")


class CachedImagesOut(BaseModel):
    parts: list[CachedPartOut]
    reported_at: str = Field(description="When the agent said so (ISO 8601, UTC).")


class HostOut(BaseModel):
    # The order the answer always had: hypervisor and images first.
    hypervisor: HypervisorOut | None
    images: CachedImagesOut | None
    name: str
    enabled: bool
    generation: int
    last_report_at: str | None
    numa_cells: list[NumaCellBody]
    device_counts: dict[str, int]
    device_total: int


class HostList(BaseModel):
    hosts: list[HostOut]


class HostCreated(BaseModel):
    host: HostOut
    agent_token: str


class AgentToken(BaseModel):
    agent_token: str
