"""/v1/servers and /v1/scheduler/explain: put a server on a host that has its devices, or say why not.

Every action goes through ``epa.service.servers``; a route reads the request, calls the action and
returns the answer's model, which FastAPI validates against the schema it publishes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from epa.api.auth import DB, Admin, Caller
from epa.api.limits import CONSOLE_BODY_LIMIT, SERVER_CREATE_BODY_LIMIT, STATE_BODY_LIMIT, body_limit
from epa.api.schemas.server import console_out, explain_out, server_list, server_out
from epa.domain.console import MAX_LINES
from epa.domain.server import HostName, ServerId, ServerStatus
from epa.inventory import consoles, servers
from epa.service.servers import AgentReport, Boot, ServerActions, require_host
from epa.wire.explain import ExplainOut, ExplainRequest
from epa.wire.server import ConsoleIn, ConsoleOut, ServerCreate, ServerList, ServerOut, ServerState, to_ports

router = APIRouter(tags=["servers"])


def actions(request: Request) -> ServerActions:
    found: ServerActions = request.app.state.server_actions
    return found


Actions = Annotated[ServerActions, Depends(actions)]

# Printable ASCII without spaces, as the IETF Idempotency-Key draft's examples (a UUID fits).
IDEMPOTENCY_KEY = r"^[!-~]{1,64}$"


@router.post("/v1/servers", status_code=201, response_model=ServerOut)
@body_limit(SERVER_CREATE_BODY_LIMIT)
def create_server(
    body: ServerCreate,
    _: Admin,
    service: Actions,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY,
            description="Send a create again with the same key (after a lost answer) and get the same server back "
            "(with `Idempotent-Replayed: true`) instead of a second one.",
        ),
    ] = None,
) -> ServerOut:
    boot = Boot(body.image, tuple(body.ssh_keys), body.user_data)
    record, replayed = service.create(body.name, body.flavor, to_ports(body.ports), boot, idempotency_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return server_out(record)


@router.get("/v1/servers", response_model=ServerList)
def list_servers(
    db: DB, _: Admin, host: str | None = None, status: str | None = None, include_deleted: bool = False
) -> ServerList:
    return server_list(servers.list_servers(db, host=host, status=status, include_deleted=include_deleted))


@router.get("/v1/servers/{server_id}", response_model=ServerOut)
def show_server(server_id: str, db: DB, _: Admin) -> ServerOut:
    return server_out(servers.get_server(db, server_id))


@router.delete("/v1/servers/{server_id}", status_code=202, response_model=ServerOut)
def delete_server(server_id: str, _: Admin, service: Actions, force: bool = False) -> ServerOut:
    """A server on a host goes to ``deleting`` (its agent tears it down, then its devices return);
    one without a host, or with ``force=true`` (the host is gone for good), is released at once."""
    return server_out(service.delete(ServerId(server_id), force=force))


@router.post("/v1/servers/{server_id}/stop", response_model=ServerOut)
def stop_server(server_id: str, _: Admin, service: Actions) -> ServerOut:
    return server_out(service.stop(ServerId(server_id)))


@router.post("/v1/servers/{server_id}/start", response_model=ServerOut)
def start_server(server_id: str, _: Admin, service: Actions) -> ServerOut:
    return server_out(service.start(ServerId(server_id)))


@router.get("/v1/hosts/{name}/servers", response_model=ServerList)
def host_servers(name: str, who: Caller, service: Actions) -> ServerList:
    """What the host's agent must make real: every server on the host that is not deleted."""
    return server_list(service.on_host(who, HostName(name)))


@router.post("/v1/servers/{server_id}/state", response_model=ServerOut)
@body_limit(STATE_BODY_LIMIT)
def report_state(server_id: str, body: ServerState, who: Caller, service: Actions) -> ServerOut:
    """The host's agent reports progress, failure (which releases the devices) or the domain it sees."""
    status = ServerStatus(body.status) if body.status else None
    report = AgentReport(status, body.reason, body.domain_uuid, body.domain_state, body.domain_xml)
    return server_out(service.report(who, ServerId(server_id), report))


@router.post("/v1/servers/{server_id}/released", response_model=ServerOut)
def report_released(server_id: str, who: Caller, service: Actions) -> ServerOut:
    """The host's agent destroyed the domain and reset the VFs: the devices go back to the pool."""
    return server_out(service.released(who, ServerId(server_id)))


@router.put("/v1/servers/{server_id}/console", response_model=ConsoleOut)
@body_limit(CONSOLE_BODY_LIMIT)
def put_console(server_id: str, body: ConsoleIn, db: DB, who: Caller) -> ConsoleOut:
    """The host's agent sends the end of the server's serial console (it reaches the API, not the reverse)."""
    require_host(who, servers.get_server(db, server_id).host or "")
    return console_out(consoles.put_console(db, server_id, body.text), 100)


@router.get("/v1/servers/{server_id}/console", response_model=ConsoleOut)
def get_console(server_id: str, db: DB, _: Admin, tail: Annotated[int, Query(ge=1, le=MAX_LINES)] = 100) -> ConsoleOut:
    """The last ``tail`` lines of the server's serial console, control characters escaped."""
    return console_out(consoles.get_console(db, server_id), tail)


@router.post("/v1/scheduler/explain", response_model=ExplainOut)
def explain(body: ExplainRequest, _: Admin, service: Actions) -> ExplainOut:
    request, why = service.explain(body.flavor, to_ports(body.ports), body.image)
    return explain_out(request, why, body.limit)
