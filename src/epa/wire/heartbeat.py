"""The body of an agent's heartbeat and of the server's answer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from epa.wire.host import STORED_INT_MAX


class HeartbeatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generation: int = Field(ge=0, le=STORED_INT_MAX, description="The host generation the agent holds.")


class HeartbeatOut(BaseModel):
    host: str
    generation: int
