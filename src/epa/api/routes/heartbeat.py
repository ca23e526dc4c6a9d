"""POST /v1/hosts/{name}/heartbeat: an agent whose inventory did not change says it is alive.

O(1) per heartbeat and no device list: the liveness goes into the process's heartbeat buffer, written
with the others of its batch in one transaction (service.heartbeats) that checks their tokens too - so
this route does not take the ``Caller`` dependency, whose one query per request would cost more than the
heartbeat itself - and the answer comes once that committed. A generation that is not the host's
current one is a 409 ``generation_conflict`` (with the current generation), after which the agent
sends its full report."""

from __future__ import annotations

from fastapi import APIRouter, Request

from epa.api.auth import bearer_token, may_access_host
from epa.api.schemas.heartbeat import HeartbeatBody, HeartbeatOut
from epa.errors import GenerationConflict, NotFound, Unauthorized
from epa.inventory.tokens import token_digest
from epa.service.heartbeats import HeartbeatWriter

router = APIRouter(prefix="/v1/hosts", tags=["inventory"])


@router.post("/{name}/heartbeat", response_model=HeartbeatOut)
async def post_heartbeat(name: str, body: HeartbeatBody, request: Request) -> HeartbeatOut:
    digest = token_digest(bearer_token(request))
    writer: HeartbeatWriter = request.app.state.heartbeats
    outcome = await writer.beat(name, body.generation, digest)
    if outcome.caller is None:
        raise Unauthorized("unknown token")
    may_access_host(outcome.caller, name)
    if outcome.current is None:
        raise NotFound(f"host {name!r} does not exist")
    if not outcome.matches(body.generation):
        raise GenerationConflict(
            f"host {name}: the agent holds generation {body.generation}, but the host is at generation "
            f"{outcome.current}; send a full inventory report",
            current=outcome.current,
        )
    return HeartbeatOut(host=name, generation=outcome.current)
