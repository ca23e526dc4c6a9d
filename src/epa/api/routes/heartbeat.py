"""POST /v1/hosts/{name}/heartbeat: an agent whose inventory did not change says it is alive.

O(1) per heartbeat and no device list: the liveness goes into the process's heartbeat buffer, written
with the others of its batch in one transaction (service.heartbeats) that checks their tokens too - so
this route does not take the ``Caller`` dependency, whose one query per request would cost more than the
heartbeat itself - and the answer comes once that committed. A generation that is not the host's
current one is a 409 ``generation_conflict`` (with the current generation), after which the agent
sends its full report.

Every host sends one every scan, so the edge serves it itself (:data:`LANE`, ``epa.api.limits``): under the
same body cap and the same checks of the path and the body, without FastAPI's routing, dependencies and
response validation, which cost about three times what the heartbeat does. The router keeps the route for the
OpenAPI document and for an app run without the edge; both answer through :func:`beat`."""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import Headers, QueryParams
from starlette.types import Scope

from epa.api.auth import may_access_host, token_of_header
from epa.api.limits import DEFAULT_BODY_LIMIT, Lane
from epa.api.offloop import parse
from epa.api.text import check_parameters
from epa.errors import GenerationConflict, NotFound, Unauthorized
from epa.inventory.tokens import token_digest
from epa.service.heartbeats import HeartbeatWriter
from epa.wire.heartbeat import HeartbeatBody, HeartbeatOut

router = APIRouter(prefix="/v1/hosts", tags=["inventory"])


async def beat(writer: HeartbeatWriter, name: str, generation: int, authorization: str) -> HeartbeatOut:
    """Record the heartbeat once its batch commits; the EPA error of a refused one."""
    digest = token_digest(token_of_header(authorization))
    outcome = await writer.beat(name, generation, digest)
    if outcome.caller is None:
        raise Unauthorized("unknown token")
    may_access_host(outcome.caller, name)
    if outcome.current is None:
        raise NotFound(f"host {name!r} does not exist")
    if not outcome.matches(generation):
        raise GenerationConflict(
            f"host {name}: the agent holds generation {generation}, but the host is at generation "
            f"{outcome.current}; send a full inventory report",
            current=outcome.current,
        )
    return HeartbeatOut(host=name, generation=outcome.current)


@router.post("/{name}/heartbeat", response_model=HeartbeatOut)
async def post_heartbeat(name: str, body: HeartbeatBody, request: Request) -> HeartbeatOut:
    return await beat(request.app.state.heartbeats, name, body.generation, request.headers.get("authorization", ""))


async def _serve(scope: Scope, found: re.Match[str], raw: bytes) -> Response:
    name = found.group(1)
    check_parameters({"name": name}, QueryParams(scope["query_string"]).multi_items())
    body = parse(raw, HeartbeatBody)
    authorization = Headers(scope=scope).get("authorization", "")
    out = await beat(scope["app"].state.heartbeats, name, body.generation, authorization)
    # The answer's two fields by hand: a response model's validation and serialisation cost more than the beat.
    content = b'{"host":%s,"generation":%d}' % (json.dumps(out.host).encode(), out.generation)
    return Response(content, media_type="application/json")


# The router's path for ``{name}``: one segment.
LANE = Lane("POST", re.compile(r"/v1/hosts/([^/]+)/heartbeat"), DEFAULT_BODY_LIMIT, _serve)
